//! `pgdbre verify`: read back every manifest, every block and every WAL file the backups
//! reference, checking stored checksums and content addresses; blocks are read pack by pack.
//! Each problem names the damaged object (and block) and the backups that depend on it.

use crate::error::BackupError;
use crate::keys;
use crate::manifest::{BlockLocation, Manifest};
use crate::repository::{decode_block, Repository};
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
    // Pack → offset → the block there and the backups that need it.
    let mut packs: BTreeMap<String, BTreeMap<u64, Stored>> = BTreeMap::new();
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
            let Some(location) = manifest.location(hash) else {
                report.problems.push(Problem {
                    object: keys::manifest_key(&label),
                    what: format!("corrupt: it names block {hash} but not where it is stored"),
                    backups: vec![label.clone()],
                });
                continue;
            };
            let stored = packs
                .entry(location.pack.clone())
                .or_default()
                .entry(location.offset)
                .or_insert_with(|| Stored {
                    hash: hash.to_string(),
                    location: location.clone(),
                    users: Vec::new(),
                });
            if stored.users.last() != Some(&label) {
                stored.users.push(label.clone());
            }
        }
        for name in &manifest.wal {
            wal.entry(keys::wal_key(manifest.timeline, name))
                .or_default()
                .push(label.clone());
        }
        report.backups.push(label);
    }
    report.blocks_checked = packs.values().map(|blocks| blocks.len() as u64).sum();
    report.wal_checked = wal.len() as u64;
    let pack_checks = futures::stream::iter(packs)
        .map(|(pack, blocks)| check_pack(repository, pack, blocks))
        .buffer_unordered(jobs.max(1))
        .flat_map(futures::stream::iter);
    let wal_checks = futures::stream::iter(wal)
        .map(|(key, users)| async move {
            let outcome = repository.get(&key).await;
            (key, users, outcome.map(drop))
        })
        .buffer_unordered(jobs.max(1));
    let outcomes: Vec<_> = pack_checks.chain(wal_checks).collect().await;
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

/// A block as a manifest locates it, and the backups that need it.
struct Stored {
    hash: String,
    location: BlockLocation,
    users: Vec<String>,
}

/// Reads every referenced block of `pack` and checks it; one outcome per damaged block (or one
/// for the whole pack when it cannot be read), each with the backups that need it.
async fn check_pack(
    repository: &Repository,
    pack: String,
    blocks: BTreeMap<u64, Stored>,
) -> Vec<(String, Vec<String>, Result<(), BackupError>)> {
    let key = keys::pack_key(&pack);
    let blocks: Vec<Stored> = blocks.into_values().collect();
    let locations: Vec<&BlockLocation> = blocks.iter().map(|stored| &stored.location).collect();
    let parts = match repository.get_pack_ranges(&pack, &locations).await {
        Ok(parts) => parts,
        Err(error) => {
            let mut users: Vec<String> = blocks.into_iter().flat_map(|s| s.users).collect();
            users.sort();
            users.dedup();
            return vec![(key, users, Err(error))];
        }
    };
    let codec = repository.codec().clone();
    let checked = tokio::task::spawn_blocking(move || {
        blocks
            .into_iter()
            .zip(parts)
            .filter_map(|(stored, bytes)| {
                let outcome = decode_block(&codec, &stored.hash, &stored.location, &bytes);
                outcome.err().map(|error| (stored.users, error))
            })
            .collect::<Vec<_>>()
    })
    .await;
    match checked {
        Ok(damaged) => damaged
            .into_iter()
            .map(|(users, error)| (key.clone(), users, Err(error)))
            .collect(),
        Err(error) => vec![(
            key,
            Vec::new(),
            Err(BackupError::Server(format!("verify task failed: {error}"))),
        )],
    }
}

fn describe(error: &BackupError) -> String {
    match error {
        BackupError::Corrupt { reason, .. } => format!("corrupt: {reason}"),
        BackupError::MissingObject { .. } => "missing".to_string(),
        other => other.to_string(),
    }
}
