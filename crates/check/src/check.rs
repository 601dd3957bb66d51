//! What a check is: static metadata (id, thresholds, runbook) plus an async `run`.

use crate::{CheckError, Context, Finding};
use serde::Serialize;

/// A single health check. Implementations are unit structs registered in `checks::all()`.
#[async_trait::async_trait]
pub trait Check: Send + Sync {
    /// The check's identity, thresholds, requirements and runbook.
    fn meta(&self) -> &'static CheckMeta;
    /// Queries the server and returns one finding per problem found (empty when healthy).
    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError>;
}

/// Where a check sits in the catalog; used for `--category` and grouping in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Transactions,
    Locks,
    Connections,
    Replication,
    Archiving,
    Maintenance,
    Indexes,
    Schema,
    Performance,
    Security,
    Configuration,
}

impl Category {
    /// The kebab-case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Category::Transactions => "transactions",
            Category::Locks => "locks",
            Category::Connections => "connections",
            Category::Replication => "replication",
            Category::Archiving => "archiving",
            Category::Maintenance => "maintenance",
            Category::Indexes => "indexes",
            Category::Schema => "schema",
            Category::Performance => "performance",
            Category::Security => "security",
            Category::Configuration => "configuration",
        }
    }
}

/// Which servers a check applies to; others report it as skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Any,
    Primary,
    Standby,
}

/// What the connecting role and server must offer for the check to run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Requires {
    /// Lowest `server_version_num` major the check supports (e.g. 13).
    pub min_major: u32,
    /// Needs `pg_monitor` (or superuser) to see other sessions or server-wide stats.
    pub pg_monitor: bool,
    /// Needs superuser (e.g. reading `pg_hba_file_rules`).
    pub superuser: bool,
    pub role: Role,
}

impl Requires {
    /// Any server from PostgreSQL 12, any role, no special privilege.
    pub const ANY: Requires = Requires {
        min_major: 12,
        pg_monitor: false,
        superuser: false,
        role: Role::Any,
    };
    /// Like [`Requires::ANY`] but needs `pg_monitor`.
    pub const MONITOR: Requires = Requires {
        min_major: 12,
        pg_monitor: true,
        superuser: false,
        role: Role::Any,
    };
}

/// A tunable threshold or option of a check; overridable from the thresholds file or `--set`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Param {
    pub name: &'static str,
    pub default: f64,
    /// Unit shown in help and docs: "seconds", "bytes", "percent", "transactions", "count", ...
    pub unit: &'static str,
    pub help: &'static str,
}

/// What a DBRE reads when the check fires.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Runbook {
    /// Why it matters: the failure this finding leads to.
    pub why: &'static str,
    /// What to do about it.
    pub action: &'static str,
    /// The exact SQL or command to run next.
    pub next: &'static str,
}

/// Static description of a check; one `static` per check file.
#[derive(Debug, Serialize)]
pub struct CheckMeta {
    /// Stable kebab-case id: never renamed once released.
    pub id: &'static str,
    pub category: Category,
    pub title: &'static str,
    /// What the check measures, in one sentence.
    pub measures: &'static str,
    pub params: &'static [Param],
    pub requires: Requires,
    pub runbook: Runbook,
}

impl CheckMeta {
    /// The declared parameter called `name`, if any.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}
