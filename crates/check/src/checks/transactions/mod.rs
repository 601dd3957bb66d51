//! Transaction-age and wraparound checks, plus locks and connection pressure.

mod long_running_transactions;

use crate::Check;

/// The checks of this group, in display order.
pub fn checks() -> Vec<&'static dyn Check> {
    vec![&long_running_transactions::LongRunningTransactions]
}
