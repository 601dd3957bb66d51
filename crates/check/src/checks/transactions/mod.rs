//! Transaction-age and wraparound checks, plus locks and connection pressure.
//!
//! Shared, check-less modules: `wraparound` holds the arithmetic (and the per-database run) the
//! wraparound checks share; `tiers` the info/warning/critical classification of the session-age
//! checks; `activity` the `pg_stat_activity` evidence of the session checks; `test_support` the
//! helpers their integration tests share (burning xids, prepared-transaction guards, evidence).

mod activity;
mod blocking_locks;
mod connection_saturation;
mod deadlocks;
mod idle_in_transaction;
mod long_running_transactions;
mod multixact_wraparound;
mod prepared_transactions;
mod table_wraparound;
mod tiers;
mod txid_wraparound;
mod wraparound;
mod xmin_horizon;

#[cfg(test)]
mod test_support;

use crate::Check;

/// The checks of this group, in display order.
pub fn checks() -> Vec<&'static dyn Check> {
    vec![
        &txid_wraparound::TxidWraparound,
        &multixact_wraparound::MultixactWraparound,
        &table_wraparound::TableWraparound,
        &long_running_transactions::LongRunningTransactions,
        &idle_in_transaction::IdleInTransaction,
        &prepared_transactions::PreparedTransactions,
        &xmin_horizon::XminHorizon,
        &blocking_locks::BlockingLocks,
        &deadlocks::Deadlocks,
        &connection_saturation::ConnectionSaturation,
    ]
}
