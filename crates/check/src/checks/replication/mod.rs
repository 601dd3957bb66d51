//! Replication, WAL archiving and server-wide performance checks: standby lag seen from both
//! ends, replication slots and the WAL they retain, the archiver, checkpoints, temp-file spill
//! and the buffer cache.

mod archive_mode_off;
mod archiver_failing;
mod cache_hit_ratio;
mod checkpoint_pressure;
mod inactive_replication_slots;
mod max_slot_wal_keep_size_unset;
mod replication_lag;
mod replication_slot_wal_retention;
mod standby_replay_lag;
mod temp_file_spill;
#[cfg(test)]
mod test_support;
mod wal_accumulation;

use crate::Check;

/// The checks of this group, in display order.
pub fn checks() -> Vec<&'static dyn Check> {
    vec![
        &replication_lag::ReplicationLag,
        &standby_replay_lag::StandbyReplayLag,
        &inactive_replication_slots::InactiveReplicationSlots,
        &replication_slot_wal_retention::ReplicationSlotWalRetention,
        &max_slot_wal_keep_size_unset::MaxSlotWalKeepSizeUnset,
        &archiver_failing::ArchiverFailing,
        &archive_mode_off::ArchiveModeOff,
        &wal_accumulation::WalAccumulation,
        &checkpoint_pressure::CheckpointPressure,
        &temp_file_spill::TempFileSpill,
        &cache_hit_ratio::CacheHitRatio,
    ]
}
