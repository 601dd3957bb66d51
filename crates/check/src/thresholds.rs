//! The thresholds file (`--thresholds FILE`) and `--set check.param=value` overrides.
//!
//! Parsed without side effects into plain maps, validated once against the catalog so a typo in
//! a check id or parameter name is an error naming file, line and key, never silently ignored.
//!
//! ```yaml
//! checks:
//!   long-running-transactions:
//!     warning: 300      # seconds
//!     critical: 3600
//!   ssl-off:
//!     enabled: false
//! ```

use crate::Check;
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A thresholds file or override that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdError {
    #[error("cannot read thresholds file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {key}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        key: String,
        message: String,
    },
}

/// Threshold overrides per check id, and checks disabled by configuration.
#[derive(Debug, Default, Clone)]
pub struct Thresholds {
    overrides: BTreeMap<String, BTreeMap<String, f64>>,
    disabled: BTreeSet<String>,
}

impl Thresholds {
    /// Reads and validates a thresholds file.
    pub fn load(path: &Path, catalog: &[&'static dyn Check]) -> Result<Self, ThresholdError> {
        let text = std::fs::read_to_string(path).map_err(|source| ThresholdError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), catalog)
    }

    /// Parses and validates thresholds YAML; `origin` names the source in errors.
    pub fn parse(
        text: &str,
        origin: &str,
        catalog: &[&'static dyn Check],
    ) -> Result<Self, ThresholdError> {
        let invalid = |path: &[&str], message: String| ThresholdError::Invalid {
            origin: origin.to_string(),
            line: find_line(text, path),
            key: path.join("."),
            message,
        };
        let root: Value = serde_norway::from_str(text).map_err(|e| ThresholdError::Invalid {
            origin: origin.to_string(),
            line: e.location().map(|l| l.line()).unwrap_or(1),
            key: "(document)".into(),
            message: format!("not valid YAML: {e}"),
        })?;
        let mut out = Thresholds::default();
        let root = match root {
            Value::Null => return Ok(out),
            Value::Mapping(m) => m,
            _ => {
                return Err(invalid(
                    &[],
                    "expected a mapping with a `checks:` key".into(),
                ))
            }
        };
        for (key, value) in root {
            let key = key_str(&key);
            if key != "checks" {
                return Err(invalid(
                    &[&key],
                    "unknown key; the only top-level key is `checks`".into(),
                ));
            }
            let checks = match value {
                Value::Mapping(m) => m,
                Value::Null => continue,
                _ => {
                    return Err(invalid(
                        &["checks"],
                        "expected a mapping of check id to thresholds".into(),
                    ))
                }
            };
            for (id, params) in checks {
                let id = key_str(&id);
                let Some(check) = catalog.iter().find(|c| c.meta().id == id) else {
                    return Err(invalid(
                        &["checks", &id],
                        format!("unknown check id{}", suggest(&id, catalog)),
                    ));
                };
                let meta = check.meta();
                let params = match params {
                    Value::Mapping(m) => m,
                    Value::Null => continue,
                    _ => {
                        return Err(invalid(
                            &["checks", &id],
                            "expected a mapping of parameter to number".into(),
                        ))
                    }
                };
                for (name, value) in params {
                    let name = key_str(&name);
                    let path = ["checks", id.as_str(), name.as_str()];
                    if name == "enabled" {
                        match value {
                            Value::Bool(false) => {
                                out.disabled.insert(id.clone());
                            }
                            Value::Bool(true) => {}
                            _ => return Err(invalid(&path, "expected true or false".into())),
                        }
                        continue;
                    }
                    if meta.param(&name).is_none() {
                        return Err(invalid(
                            &path,
                            format!("unknown parameter; {id} accepts {}", param_list(meta)),
                        ));
                    }
                    let Some(number) = value.as_f64() else {
                        return Err(invalid(&path, "expected a number".into()));
                    };
                    out.overrides
                        .entry(id.clone())
                        .or_default()
                        .insert(name, number);
                }
            }
        }
        Ok(out)
    }

    /// Applies one `check-id.param=value` override from the command line.
    pub fn set(
        &mut self,
        assignment: &str,
        catalog: &[&'static dyn Check],
    ) -> Result<(), ThresholdError> {
        let invalid = |key: &str, message: String| ThresholdError::Invalid {
            origin: "--set".into(),
            line: 1,
            key: key.to_string(),
            message,
        };
        let Some((key, value)) = assignment.split_once('=') else {
            return Err(invalid(assignment, "expected CHECK.PARAM=VALUE".into()));
        };
        let Some((id, name)) = key.trim().split_once('.') else {
            return Err(invalid(key, "expected CHECK.PARAM=VALUE".into()));
        };
        let Some(check) = catalog.iter().find(|c| c.meta().id == id) else {
            return Err(invalid(
                key,
                format!("unknown check id{}", suggest(id, catalog)),
            ));
        };
        if check.meta().param(name).is_none() {
            return Err(invalid(
                key,
                format!(
                    "unknown parameter; {id} accepts {}",
                    param_list(check.meta())
                ),
            ));
        }
        let number: f64 = value
            .trim()
            .parse()
            .map_err(|_| invalid(key, format!("`{value}` is not a number")))?;
        self.overrides
            .entry(id.to_string())
            .or_default()
            .insert(name.to_string(), number);
        Ok(())
    }

    /// Overrides for check `id`, if any.
    pub fn for_check(&self, id: &str) -> Option<&BTreeMap<String, f64>> {
        self.overrides.get(id)
    }

    /// Whether the thresholds file disabled check `id`.
    pub fn is_disabled(&self, id: &str) -> bool {
        self.disabled.contains(id)
    }
}

fn key_str(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn param_list(meta: &crate::CheckMeta) -> String {
    let mut names: Vec<&str> = meta.params.iter().map(|p| p.name).collect();
    names.push("enabled");
    names.join(", ")
}

/// " (did you mean `x`?)" for the closest id sharing a prefix or a word, else a hint to list them.
fn suggest(id: &str, catalog: &[&'static dyn Check]) -> String {
    let words: Vec<&str> = id.split('-').filter(|w| w.len() > 2).collect();
    let best = catalog
        .iter()
        .map(|c| c.meta().id)
        .max_by_key(|candidate| words.iter().filter(|w| candidate.contains(*w)).count());
    match best {
        Some(best) if words.iter().any(|w| best.contains(w)) => {
            format!(" (did you mean `{best}`?)")
        }
        _ => " (see `pgdbre check --list`)".into(),
    }
}

/// The 1-based line where the nested key `path` appears, found by walking indentation.
fn find_line(text: &str, path: &[&str]) -> usize {
    let mut depth = 0;
    let mut min_indent = 0;
    let mut last = 1;
    for (n, line) in text.lines().enumerate() {
        if depth == path.len() {
            break;
        }
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.is_empty() || indent < min_indent {
            continue;
        }
        let key = path[depth];
        let bare = trimmed
            .strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with(':'));
        let quoted = trimmed
            .strip_prefix(&format!("\"{key}\""))
            .is_some_and(|r| r.trim_start().starts_with(':'));
        if bare || quoted {
            depth += 1;
            min_indent = indent + 1;
            last = n + 1;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks;

    fn catalog() -> Vec<&'static dyn Check> {
        checks::all()
    }

    #[test]
    fn finds_nested_key_lines() {
        let text = "# c\nchecks:\n  a-b:\n    warning: 1\n  c-d:\n    critical: x\n";
        assert_eq!(find_line(text, &["checks"]), 2);
        assert_eq!(find_line(text, &["checks", "c-d", "critical"]), 6);
    }

    #[test]
    fn unknown_check_names_file_line_and_key() {
        let err = Thresholds::parse(
            "checks:\n  no-such-check:\n    warning: 1\n",
            "t.yaml",
            &catalog(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("t.yaml:2: checks.no-such-check: unknown check id"),
            "{msg}"
        );
    }

    #[test]
    fn malformed_yaml_names_line() {
        let err = Thresholds::parse("checks:\n  a: [1,\n", "t.yaml", &catalog()).unwrap_err();
        assert!(err.to_string().starts_with("t.yaml:"), "{err}");
        assert!(err.to_string().contains("not valid YAML"), "{err}");
    }

    #[test]
    fn empty_file_is_no_overrides() {
        let t = Thresholds::parse("", "t.yaml", &catalog()).unwrap();
        assert!(t.overrides.is_empty());
    }

    #[test]
    fn set_rejects_bad_assignments() {
        let mut t = Thresholds::default();
        assert!(t.set("nonsense", &catalog()).is_err());
        assert!(t.set("no-such.warning=1", &catalog()).is_err());
    }
}
