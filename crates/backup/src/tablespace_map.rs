//! Restoring tablespaces somewhere else than where the backed-up cluster had them
//! (`--tablespace-map NAME=DIR`, `--tablespace-map-all DIR`, as pgBackRest spells them): needed
//! to restore next to the live cluster (its tablespace directories are in use) or onto a host
//! laid out differently. The manifest's `pg_tblspc/<oid>` link targets and the `tablespace_map`
//! file PostgreSQL reads at recovery start are both rewritten, so the links the restore creates
//! and the ones PostgreSQL recreates agree.

use crate::error::BackupError;
use crate::manifest::{EntryKind, Manifest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where tablespaces go instead of their recorded locations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TablespaceMap {
    /// Tablespace name or OID, and its new directory (absolute).
    pub by_key: Vec<(String, PathBuf)>,
    /// Every tablespace `by_key` does not name goes to `<all>/<name>` (or `<all>/<oid>` for
    /// a backup that did not record names).
    pub all: Option<PathBuf>,
}

impl TablespaceMap {
    /// Whether it moves nothing.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty() && self.all.is_none()
    }
}

/// Points the tablespace links of `manifest` (and its `tablespace_map`) at the directories
/// `map` names. Names that match no tablespace of the backup, relative paths and two
/// tablespaces sent to one directory are refused, before anything is written.
pub(crate) fn apply(manifest: &mut Manifest, map: &TablespaceMap) -> Result<(), BackupError> {
    if map.is_empty() {
        return Ok(());
    }
    for directory in map.by_key.iter().map(|(_, dir)| dir).chain(&map.all) {
        check_directory(directory)?;
    }
    let names: HashMap<u32, &str> = manifest
        .tablespaces
        .iter()
        .map(|tablespace| (tablespace.oid, tablespace.name.as_str()))
        .collect();
    let mut used = vec![false; map.by_key.len()];
    // OID → new directory, and which entry it is; applied once everything is checked.
    let mut moved: HashMap<String, String> = HashMap::new();
    let mut changes: Vec<(usize, String)> = Vec::new();
    let mut described = Vec::new();
    for (index, entry) in manifest.entries.iter().enumerate() {
        let Some(oid) = entry
            .path
            .strip_prefix("pg_tblspc/")
            .filter(|_| entry.kind == EntryKind::Link)
        else {
            continue;
        };
        let recorded = entry.target.as_deref().unwrap_or("?");
        let name = oid
            .parse()
            .ok()
            .and_then(|oid: u32| names.get(&oid).copied());
        described.push(match name {
            Some(name) => format!("{name} (OID {oid}) at {recorded}"),
            None => format!("OID {oid} at {recorded}"),
        });
        let chosen = map
            .by_key
            .iter()
            .position(|(key, _)| key == oid || Some(key.as_str()) == name);
        let target = match (chosen, &map.all) {
            (Some(chosen), _) => {
                used[chosen] = true;
                map.by_key[chosen].1.clone()
            }
            (None, Some(all)) => all.join(name.unwrap_or(oid)),
            (None, None) => continue,
        };
        let target = target.display().to_string();
        if let Some((other, _)) = moved.iter().find(|(_, existing)| **existing == target) {
            return Err(BackupError::Target(format!(
                "tablespaces with OIDs {other} and {oid} would both be restored to {target}; \
                 give each its own directory"
            )));
        }
        moved.insert(oid.to_string(), target.clone());
        changes.push((index, target));
    }
    if let Some(unmatched) = used.iter().position(|used| !used) {
        let tablespaces = if described.is_empty() {
            "it has no tablespaces".to_string()
        } else {
            format!("its tablespaces: {}", described.join(", "))
        };
        return Err(BackupError::Target(format!(
            "backup {} has no tablespace named or numbered {:?} ({tablespaces})",
            manifest.label, map.by_key[unmatched].0
        )));
    }
    for (index, target) in changes {
        manifest.entries[index].target = Some(target);
    }
    if let Some(text) = &manifest.tablespace_map {
        manifest.tablespace_map = Some(rewrite_map_file(text, &moved));
    }
    Ok(())
}

/// A tablespace directory must be absolute (PostgreSQL's links are) and fit on one line of
/// the `tablespace_map` file.
fn check_directory(directory: &Path) -> Result<(), BackupError> {
    let text = directory.display().to_string();
    if !directory.is_absolute() {
        return Err(BackupError::Target(format!(
            "tablespace directory {text} is not an absolute path"
        )));
    }
    if text.contains(['\n', '\r']) {
        return Err(BackupError::Target(format!(
            "tablespace directory {text:?} contains a line break"
        )));
    }
    Ok(())
}

/// `tablespace_map` ("<oid> <path>" per line) with the paths of the OIDs in `moved` replaced.
fn rewrite_map_file(text: &str, moved: &HashMap<String, String>) -> String {
    let mut rewritten = String::with_capacity(text.len());
    for line in text.lines() {
        match line.split_once(' ') {
            Some((oid, _)) if moved.contains_key(oid) => {
                rewritten.push_str(oid);
                rewritten.push(' ');
                rewritten.push_str(&moved[oid]);
            }
            _ => rewritten.push_str(line),
        }
        rewritten.push('\n');
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Entry, Tablespace};

    fn link(oid: &str, target: &str) -> Entry {
        Entry {
            path: format!("pg_tblspc/{oid}"),
            kind: EntryKind::Link,
            mode: 0o777,
            size: 0,
            mtime_ns: 0,
            blocks: vec![],
            target: Some(target.into()),
        }
    }

    fn manifest() -> Manifest {
        let mut manifest = crate::manifest::tests::sample();
        manifest.entries = vec![link("16384", "/srv/fast"), link("16390", "/srv/slow")];
        manifest.tablespaces = vec![
            Tablespace {
                oid: 16384,
                name: "fast".into(),
            },
            Tablespace {
                oid: 16390,
                name: "slow".into(),
            },
        ];
        manifest.tablespace_map = Some("16384 /srv/fast\n16390 /srv/slow\n".into());
        manifest
    }

    fn targets(manifest: &Manifest) -> Vec<&str> {
        manifest
            .entries
            .iter()
            .filter_map(|entry| entry.target.as_deref())
            .collect()
    }

    #[test]
    fn by_name_by_oid_and_the_rest_under_one_directory() {
        let mut moved = manifest();
        let map = TablespaceMap {
            by_key: vec![("fast".into(), "/mnt/fast".into())],
            all: Some("/mnt/rest".into()),
        };
        apply(&mut moved, &map).unwrap();
        assert_eq!(targets(&moved), ["/mnt/fast", "/mnt/rest/slow"]);
        assert_eq!(
            moved.tablespace_map.as_deref(),
            Some("16384 /mnt/fast\n16390 /mnt/rest/slow\n")
        );

        let mut by_oid = manifest();
        let map = TablespaceMap {
            by_key: vec![("16390".into(), "/mnt/slow".into())],
            all: None,
        };
        apply(&mut by_oid, &map).unwrap();
        assert_eq!(targets(&by_oid), ["/srv/fast", "/mnt/slow"]);
        assert_eq!(
            by_oid.tablespace_map.as_deref(),
            Some("16384 /srv/fast\n16390 /mnt/slow\n")
        );
    }

    #[test]
    fn unknown_names_relative_paths_and_shared_directories_are_refused() {
        let refuse = |map: TablespaceMap| {
            let mut manifest = manifest();
            let error = apply(&mut manifest, &map).unwrap_err().to_string();
            assert_eq!(
                targets(&manifest)[0],
                "/srv/fast",
                "changed before refusing"
            );
            error
        };
        let error = refuse(TablespaceMap {
            by_key: vec![("nope".into(), "/mnt/x".into())],
            all: None,
        });
        assert!(
            error.contains("\"nope\"") && error.contains("fast (OID 16384) at /srv/fast"),
            "{error}"
        );
        let error = refuse(TablespaceMap {
            by_key: vec![("fast".into(), "mnt/x".into())],
            all: None,
        });
        assert!(error.contains("not an absolute path"), "{error}");
        let error = refuse(TablespaceMap {
            by_key: vec![
                ("fast".into(), "/mnt/x".into()),
                ("slow".into(), "/mnt/x".into()),
            ],
            all: None,
        });
        assert!(error.contains("both be restored to /mnt/x"), "{error}");
    }
}
