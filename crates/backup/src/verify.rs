//! `pgdbre verify`: read back every manifest, every block and every WAL file the backups
//! reference, checking stored checksums and content addresses. Each problem names the damaged
//! object and the backups that depend on it.

use crate::error::BackupError;
use crate::keys;
use crate::manifest::Manifest;
use crate::repository::Repository;
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;

/// One damaged or missing object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The object key.
    pub object: String,
    /// What is wrong with it.
    pub what: String,
    /// Labels of the backups that cannot be restored because of it.
    pub backups: Vec<String>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Backups whose manifest was read.
    pub backups: Vec<String>,
    /// Distinct blocks checked.
    pub blocks_checked: u64,
    /// WAL files checked.
    pub wal_checked: u64,
    /// Everything found wrong; empty when the repository is intact.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies every backup in `repository`, reading objects with `jobs` requests in flight.
pub async fn verify(repository: &Repository, jobs: usize) -> Result<VerifyReport, BackupError> {
    let mut report = VerifyReport::default();
    let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut wal: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for label in repository.labels().await? {
        let manifest: Manifest = match repository.manifest(&label).await {
            Ok(manifest) => manifest,
            Err(error @ (BackupError::Corrupt { .. } | BackupError::NoSuchBackup { .. })) => {
                report.problems.push(Problem {
                    object: keys::manifest_key(&label),
                    what: describe(&error),
                    backups: vec![label.clone()],
                });
                continue;
            }
            Err(error) => return Err(error),
        };
        for hash in manifest.block_hashes() {
            let users = blocks.entry(hash.to_string()).or_default();
            if users.last() != Some(&label) {
                users.push(label.clone());
            }
        }
        for name in &manifest.wal {
            wal.entry(keys::wal_key(manifest.timeline, name))
                .or_default()
                .push(label.clone());
        }
        report.backups.push(label);
    }
    report.blocks_checked = blocks.len() as u64;
    report.wal_checked = wal.len() as u64;
    let block_checks = futures::stream::iter(blocks)
        .map(|(hash, users)| async move {
            let outcome = repository.get_block(&hash).await;
            (keys::block_key(&hash), users, outcome.map(drop))
        })
        .buffer_unordered(jobs.max(1));
    let wal_checks = futures::stream::iter(wal)
        .map(|(key, users)| async move {
            let outcome = repository.get(&key).await;
            (key, users, outcome.map(drop))
        })
        .buffer_unordered(jobs.max(1));
    let outcomes: Vec<_> = block_checks.chain(wal_checks).collect().await;
    for (object, backups, outcome) in outcomes {
        match outcome {
            Ok(()) => {}
            Err(error @ (BackupError::Corrupt { .. } | BackupError::MissingObject { .. })) => {
                report.problems.push(Problem {
                    object,
                    what: describe(&error),
                    backups,
                })
            }
            Err(error) => return Err(error),
        }
    }
    report.problems.sort_by(|a, b| a.object.cmp(&b.object));
    Ok(report)
}

fn describe(error: &BackupError) -> String {
    match error {
        BackupError::Corrupt { reason, .. } => format!("corrupt: {reason}"),
        BackupError::MissingObject { .. } => "missing".to_string(),
        other => other.to_string(),
    }
}
