//! Line numbers for YAML paths, so every spec error names `FILE:LINE`.
//!
//! `serde_norway::Value` carries no positions, so this walks the block-style text once and
//! records the line where each mapping key and sequence item starts. Flow-style collections
//! (`[a, b]`, `{a: 1}`) are not descended into; a path inside one resolves to its nearest
//! located ancestor, which is still the right line for a one-line flow collection.

use std::collections::HashMap;
use std::fmt;

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a path as `slos[1].target`.
pub struct PathDisplay<'a>(pub &'a [Seg]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Path → 1-based line of the key or item that starts it.
#[derive(Debug, Default)]
pub struct LineMap {
    lines: HashMap<Vec<Seg>, usize>,
}

#[derive(Debug)]
struct Frame {
    column: usize,
    seg: Seg,
}

impl LineMap {
    pub fn new(text: &str) -> LineMap {
        let mut map = LineMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut next_index: HashMap<Vec<Seg>, usize> = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
                continue;
            }
            let mut column = line.len() - trimmed.len();
            let mut rest = trimmed;
            loop {
                if rest == "-" || rest.starts_with("- ") {
                    // A sequence item: siblings and anything deeper end here; a key at the same
                    // column is the parent of a compact sequence (`key:\n- item`) and stays.
                    while stack.last().is_some_and(|f| {
                        f.column > column || (f.column == column && matches!(f.seg, Seg::Index(_)))
                    }) {
                        stack.pop();
                    }
                    let parent: Vec<Seg> = stack.iter().map(|f| f.seg.clone()).collect();
                    let counter = next_index.entry(parent.clone()).or_insert(0);
                    let index = *counter;
                    *counter += 1;
                    let mut path = parent;
                    path.push(Seg::Index(index));
                    map.lines.entry(path).or_insert(number + 1);
                    stack.push(Frame {
                        column,
                        seg: Seg::Index(index),
                    });
                    let after = &rest[1..];
                    let spaces = after.len() - after.trim_start().len();
                    column += 1 + spaces;
                    rest = after.trim_start();
                    if rest.is_empty() {
                        break;
                    }
                    continue;
                }
                if let Some(key) = mapping_key(rest) {
                    while stack.last().is_some_and(|f| f.column >= column) {
                        stack.pop();
                    }
                    let mut path: Vec<Seg> = stack.iter().map(|f| f.seg.clone()).collect();
                    path.push(Seg::Key(key.clone()));
                    // A new mapping under this key restarts sequence numbering below it.
                    next_index.remove(&path);
                    map.lines.entry(path).or_insert(number + 1);
                    stack.push(Frame {
                        column,
                        seg: Seg::Key(key),
                    });
                }
                break;
            }
        }
        map
    }

    /// The line of `path`, or of its nearest located ancestor, or 1.
    pub fn line(&self, path: &[Seg]) -> usize {
        (0..=path.len())
            .rev()
            .find_map(|n| self.lines.get(&path[..n]).copied())
            .unwrap_or(1)
    }
}

/// The key of a `key: value` / `key:` line, bare or quoted.
fn mapping_key(text: &str) -> Option<String> {
    let (key, after) = if let Some(quoted) = text.strip_prefix('"') {
        let end = quoted.find('"')?;
        (quoted[..end].to_string(), &quoted[end + 1..])
    } else if let Some(quoted) = text.strip_prefix('\'') {
        let end = quoted.find('\'')?;
        (quoted[..end].to_string(), &quoted[end + 1..])
    } else {
        if text.starts_with(['{', '[', '&', '*', '!', '|', '>']) {
            return None;
        }
        let end = text
            .find(": ")
            .or_else(|| text.strip_suffix(':').map(|k| k.len()))?;
        // A comment after the colon: `key: # note` and `key:# not a key`.
        let key = &text[..end];
        if key.contains(" #") {
            return None;
        }
        (key.trim_end().to_string(), &text[end..])
    };
    let after = after.trim_start();
    (after == ":" || after.starts_with(": ") || after.starts_with(":\t")).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    const DOC: &str = "\
# header
service: payments-db
slos:
  - name: read-latency
    sli: read_latency_p99
    target: \"< 40\"   # ms
  - name: lag
    target: <= 5
burn_policies:
- if_burn_rate: \"> 2x\"
  action: freeze-deploys
- over: 1h
alerting:
  profile: custom
  windows:
    - {severity: page, long: 1h}
";

    #[test]
    fn locates_keys_and_items() {
        let map = LineMap::new(DOC);
        assert_eq!(map.line(&[key("service")]), 2);
        assert_eq!(map.line(&[key("slos"), Seg::Index(0)]), 4);
        assert_eq!(map.line(&[key("slos"), Seg::Index(0), key("target")]), 6);
        assert_eq!(map.line(&[key("slos"), Seg::Index(1), key("name")]), 7);
        assert_eq!(map.line(&[key("slos"), Seg::Index(1), key("target")]), 8);
    }

    #[test]
    fn compact_sequences_under_a_key() {
        let map = LineMap::new(DOC);
        assert_eq!(
            map.line(&[key("burn_policies"), Seg::Index(0), key("action")]),
            11
        );
        assert_eq!(
            map.line(&[key("burn_policies"), Seg::Index(1), key("over")]),
            12
        );
        assert_eq!(map.line(&[key("alerting"), key("profile")]), 14);
    }

    #[test]
    fn flow_collections_resolve_to_their_line() {
        let map = LineMap::new(DOC);
        let path = [key("alerting"), key("windows"), Seg::Index(0), key("long")];
        assert_eq!(map.line(&path), 16);
    }

    #[test]
    fn unknown_paths_fall_back_to_ancestors() {
        let map = LineMap::new(DOC);
        assert_eq!(map.line(&[key("slos"), Seg::Index(1), key("window")]), 7);
        assert_eq!(map.line(&[key("nothing")]), 1);
    }

    #[test]
    fn renders_paths() {
        let path = [key("slos"), Seg::Index(1), key("target")];
        assert_eq!(PathDisplay(&path).to_string(), "slos[1].target");
        assert_eq!(PathDisplay(&[]).to_string(), "(document)");
    }
}
