//! Blocking lock chains: which session at the root of a lock queue makes others wait, and how
//! many wait behind it.
//!
//! `pg_blocking_pids()` gives, for each session waiting on a heavyweight lock, the sessions it
//! waits for (holders and conflicting requests queued ahead of it). Following those edges back
//! to a session that is not itself waiting on a lock finds the root blocker: the one session to
//! deal with. One finding per root, with the whole tree of waiters behind it. Building the trees
//! is a pure function of the rows ([`lock_trees`]) so it is unit-tested without a server.

use super::tiers::Tiers;
use crate::finding::human_duration;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// See the module docs.
pub struct BlockingLocks;

static META: CheckMeta = CheckMeta {
    id: "blocking-locks",
    category: Category::Locks,
    title: "Blocking lock chains",
    measures: "For each root blocker (blocks others, waits for no lock itself), the sessions waiting \
               behind it via pg_blocking_pids() and the longest of their lock waits.",
    params: &[
        Param {
            name: "info",
            default: 1.0,
            unit: "seconds",
            help: "longest lock wait behind a root that is reported as Info: the default \
                   deadlock_timeout, after which PostgreSQL itself (with log_lock_waits) logs a wait",
        },
        Param { name: "warning", default: 30.0, unit: "seconds", help: "longest lock wait behind a root that warns" },
        Param {
            name: "critical",
            default: 300.0,
            unit: "seconds",
            help: "longest lock wait behind a root that is critical",
        },
    ],
    requires: Requires::MONITOR,
    runbook: Runbook {
        why: "Lock queues are first-come first-served: one session holding a lock (often idle in a \
              transaction, or a DDL statement waiting for it) makes every later request on the same \
              table wait, so a single forgotten transaction can stall all traffic to a table and \
              exhaust the connection pool.",
        action: "Look at the root blocker in the evidence: if it is idle in a transaction or an \
                 abandoned job, terminate it; if it is DDL waiting behind a long transaction, cancel \
                 the DDL and retry it with a lock_timeout. A root shown as pid 0 is a prepared \
                 transaction (see prepared-transactions). Run migrations with lock_timeout so they give \
                 up instead of queueing everyone.",
        next: "SELECT pid, pg_blocking_pids(pid), wait_event_type, now() - query_start AS waiting, query \
               FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0; \
               -- then: SELECT pg_cancel_backend(<root pid>); or SELECT pg_terminate_backend(<root pid>);",
    },
};

/// Waiters, then every session involved (waiters and the sessions they wait for, including pid
/// 0, which stands for a prepared transaction), with what each is doing. `{wait_start}` is
/// `pg_locks.waitstart` where it exists (PostgreSQL 14+). Relation names resolve only in the
/// connected database (an oid of another database could name an unrelated table here), so
/// other databases' relations are shown by oid.
const SQL_TEMPLATE: &str = "\
WITH lock_waits AS (
    SELECT pid, {wait_start} AS wait_start,
           string_agg(DISTINCT mode || ' on ' || locktype || coalesce(' ' || CASE
                          WHEN database = d.oid THEN relation::regclass::text
                          ELSE 'oid ' || relation::text || ' in database oid ' || database::text
                      END, ''), ', ') AS waiting_for
    FROM pg_locks
    CROSS JOIN (SELECT oid FROM pg_database WHERE datname = current_database()) d
    WHERE NOT granted
    GROUP BY pid
),
waiting AS (
    SELECT pid, pg_blocking_pids(pid) AS blocked_by
    FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()
),
involved AS (
    SELECT pid FROM waiting
    UNION
    SELECT unnest(blocked_by) FROM waiting
)
SELECT i.pid,
       coalesce(w.blocked_by, '{}') AS blocked_by,
       a.state, a.wait_event_type, a.wait_event,
       a.usename::text AS usename, a.application_name, a.datname::text AS datname,
       a.client_addr::text AS client_addr,
       left(a.query, 200) AS query,
       EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS xact_age_seconds,
       CASE WHEN w.pid IS NOT NULL
            THEN EXTRACT(EPOCH FROM now() - coalesce(l.wait_start, a.state_change))::float8
       END AS wait_seconds,
       l.waiting_for
FROM involved i
LEFT JOIN waiting w ON w.pid = i.pid
LEFT JOIN pg_stat_activity a ON a.pid = i.pid
LEFT JOIN lock_waits l ON l.pid = i.pid
ORDER BY i.pid";

/// At most this many waiters are listed in one finding's `wait_tree` (the count stays exact).
const MAX_TREE_ENTRIES: usize = 100;

/// One session in a lock graph: who it is and whom it waits for (empty if it is not waiting).
#[derive(Debug, Clone, PartialEq)]
pub struct LockSession {
    pub pid: i32,
    pub blocked_by: Vec<i32>,
    /// How long it has waited for its lock, for waiting sessions.
    pub wait_seconds: Option<f64>,
}

/// A root blocker and every session waiting behind it, directly or through other waiters.
#[derive(Debug, Clone, PartialEq)]
pub struct LockTree {
    pub root: i32,
    /// Waiters in breadth-first order from the root (direct waiters first), each once.
    pub waiters: Vec<i32>,
    pub longest_wait_seconds: f64,
}

/// Groups waiting sessions under their root blockers: sessions that block someone but wait for
/// no one. Waiters caught in a cycle (a deadlock the detector has not broken yet) have no root
/// and are left out. Roots come out in pid order.
pub fn lock_trees(sessions: &[LockSession]) -> Vec<LockTree> {
    let by_pid: BTreeMap<i32, &LockSession> = sessions.iter().map(|s| (s.pid, s)).collect();
    let mut waiters_of: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for session in sessions {
        for blocker in &session.blocked_by {
            waiters_of.entry(*blocker).or_default().push(session.pid);
        }
    }
    let is_waiting = |pid: &i32| by_pid.get(pid).is_some_and(|s| !s.blocked_by.is_empty());
    let mut trees = Vec::new();
    for root in waiters_of.keys().filter(|pid| !is_waiting(pid)) {
        let mut seen = BTreeSet::from([*root]);
        let mut queue = VecDeque::from([*root]);
        let mut waiters = Vec::new();
        while let Some(pid) = queue.pop_front() {
            for waiter in waiters_of.get(&pid).into_iter().flatten() {
                if seen.insert(*waiter) {
                    waiters.push(*waiter);
                    queue.push_back(*waiter);
                }
            }
        }
        let longest_wait_seconds = waiters
            .iter()
            .filter_map(|pid| by_pid.get(pid).and_then(|s| s.wait_seconds))
            .fold(0.0, f64::max);
        trees.push(LockTree {
            root: *root,
            waiters,
            longest_wait_seconds,
        });
    }
    trees
}

/// What the query says about one involved session.
struct SessionRow {
    lock: LockSession,
    row: tokio_postgres::Row,
}

#[async_trait::async_trait]
impl Check for BlockingLocks {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let wait_start = if ctx.info().version.major() >= 14 {
            "min(waitstart)"
        } else {
            "NULL::timestamptz"
        };
        let sql = SQL_TEMPLATE.replace("{wait_start}", wait_start);
        let rows: Vec<SessionRow> = ctx
            .query(&sql, &[])
            .await?
            .into_iter()
            .map(|row| SessionRow {
                lock: LockSession {
                    pid: row.get("pid"),
                    blocked_by: row.get("blocked_by"),
                    wait_seconds: row.get("wait_seconds"),
                },
                row,
            })
            .collect();
        let sessions: Vec<LockSession> = rows.iter().map(|r| r.lock.clone()).collect();
        let by_pid: BTreeMap<i32, &SessionRow> = rows.iter().map(|r| (r.lock.pid, r)).collect();
        let text = |pid: i32, column: &str| -> Option<String> {
            by_pid.get(&pid).and_then(|r| r.row.get(column))
        };
        let tiers = Tiers::from_params(ctx);
        let mut findings = Vec::new();
        for tree in lock_trees(&sessions) {
            let Some(tier) = tiers.classify(tree.longest_wait_seconds) else {
                continue;
            };
            let root = tree.root;
            let wait_tree: Vec<serde_json::Value> = tree
                .waiters
                .iter()
                .take(MAX_TREE_ENTRIES)
                .filter_map(|pid| by_pid.get(pid))
                .map(|r| {
                    json!({
                        "pid": r.lock.pid,
                        "blocked_by": r.lock.blocked_by,
                        "wait_seconds": r.lock.wait_seconds.map(f64::round),
                        "waiting_for": r.row.get::<_, Option<String>>("waiting_for"),
                        "user": r.row.get::<_, Option<String>>("usename"),
                        "application_name": r.row.get::<_, Option<String>>("application_name"),
                        "query": r.row.get::<_, Option<String>>("query"),
                    })
                })
                .collect();
            let root_xact_age: Option<f64> = by_pid
                .get(&root)
                .and_then(|r| r.row.get("xact_age_seconds"));
            let object = if root == 0 {
                "prepared transaction (pid 0)".to_string()
            } else {
                format!("pid {root}")
            };
            let root_state = if root == 0 {
                Some("prepared".to_string())
            } else {
                text(root, "state")
            };
            findings.push(
                Finding::new(
                    tier.severity,
                    object,
                    format!(
                        "blocks {} session(s), longest lock wait {} (threshold {}); root is {}",
                        tree.waiters.len(),
                        human_duration(tree.longest_wait_seconds),
                        human_duration(tier.threshold),
                        root_state.as_deref().unwrap_or("unknown state")
                    ),
                )
                .with("root_pid", root)
                .with("root_state", root_state)
                .with("root_user", text(root, "usename"))
                .with("root_application_name", text(root, "application_name"))
                .with("root_database", text(root, "datname"))
                .with("root_client_addr", text(root, "client_addr"))
                .with("root_wait_event", text(root, "wait_event"))
                .with("root_xact_age_seconds", root_xact_age.map(f64::round))
                .with("root_query", text(root, "query"))
                .with("waiting_sessions", tree.waiters.len())
                .with("longest_wait_seconds", tree.longest_wait_seconds.round())
                .with("wait_tree", wait_tree),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::transactions::test_support::{evidence_is, integer, number, text};
    use crate::testkit;
    use crate::Severity;
    use pgdbre_lab::{testing, BackgroundSession, Node};

    /// Creates table `queued` in `db` and returns a session holding `lock` on it in an open
    /// transaction, left idle in that transaction.
    fn hold_queued_table(primary: &Node, db: &str, lock: &str) -> BackgroundSession {
        primary
            .psql_db(db, "CREATE TABLE queued (id int);")
            .unwrap();
        primary
            .background_session(db, &format!("BEGIN; {lock}"))
            .expect("hold the lock")
    }

    /// A new session in `db` that has sent `sql`, which is expected to wait for a lock.
    fn queue_behind(primary: &Node, db: &str, sql: &str) -> BackgroundSession {
        let mut session = primary.background_session(db, "").expect("waiting session");
        session.send(sql).unwrap();
        session
    }

    fn session(pid: i32, blocked_by: &[i32], wait_seconds: Option<f64>) -> LockSession {
        LockSession {
            pid,
            blocked_by: blocked_by.to_vec(),
            wait_seconds,
        }
    }

    #[test]
    fn a_chain_has_one_root_and_counts_indirect_waiters() {
        // 10 holds the lock; 20 (DDL) waits for it; 30 waits for both 10 and 20; 40 for 30.
        let trees = lock_trees(&[
            session(10, &[], None),
            session(20, &[10], Some(50.0)),
            session(30, &[10, 20], Some(40.0)),
            session(40, &[30], Some(5.0)),
        ]);
        assert_eq!(
            trees,
            vec![LockTree {
                root: 10,
                waiters: vec![20, 30, 40],
                longest_wait_seconds: 50.0
            }]
        );
    }

    #[test]
    fn independent_roots_give_separate_trees() {
        let trees = lock_trees(&[
            session(1, &[], None),
            session(2, &[1], Some(3.0)),
            session(5, &[], None),
            session(6, &[5], Some(9.0)),
        ]);
        assert_eq!(trees.len(), 2);
        assert_eq!((trees[0].root, trees[0].waiters.clone()), (1, vec![2]));
        assert_eq!((trees[1].root, trees[1].longest_wait_seconds), (5, 9.0));
    }

    #[test]
    fn a_blocker_missing_from_the_rows_is_a_root() {
        // Pid 0 (a prepared transaction) never appears as a session of its own.
        let trees = lock_trees(&[session(7, &[0], Some(12.0))]);
        assert_eq!(
            trees,
            vec![LockTree {
                root: 0,
                waiters: vec![7],
                longest_wait_seconds: 12.0
            }]
        );
    }

    #[test]
    fn a_deadlock_cycle_has_no_root() {
        let trees = lock_trees(&[session(1, &[2], Some(1.0)), session(2, &[1], Some(1.0))]);
        assert!(trees.is_empty(), "{trees:?}");
    }

    #[test]
    fn no_waiters_no_trees() {
        assert!(lock_trees(&[session(1, &[], None)]).is_empty());
    }

    #[tokio::test]
    async fn reports_the_root_blocker_with_its_waiters() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let holder = hold_queued_table(primary, &db, "LOCK TABLE queued IN ACCESS EXCLUSIVE MODE;");
        let ddl = queue_behind(primary, &db, "ALTER TABLE queued ADD COLUMN note text;");
        let reader = queue_behind(primary, &db, "SELECT count(*) FROM queued;");
        let (root, ddl_pid, reader_pid) = (
            i64::from(holder.pid()),
            i64::from(ddl.pid()),
            i64::from(reader.pid()),
        );

        let overrides = [("warning", 0.0), ("critical", 86400.0)];
        let finding =
            testkit::finding_where(&BlockingLocks, &primary.dsn_for(&db), &overrides, |f| {
                integer(f, "root_pid") == Some(root) && integer(f, "waiting_sessions") == Some(2)
            })
            .await;
        assert_eq!(finding.severity, Severity::Warning);
        assert_eq!(finding.object, format!("pid {root}"));
        assert_eq!(text(&finding, "root_state"), Some("idle in transaction"));
        assert_eq!(text(&finding, "root_database"), Some(db.as_str()));
        let tree = finding
            .evidence("wait_tree")
            .and_then(|v| v.as_array())
            .expect("a wait tree");
        let entry = |pid: i64| {
            tree.iter()
                .find(|e| e["pid"].as_i64() == Some(pid))
                .unwrap_or_else(|| panic!("{pid} in {tree:?}"))
        };
        assert_eq!(entry(ddl_pid)["blocked_by"], json!([root]));
        assert!(entry(ddl_pid)["waiting_for"]
            .as_str()
            .unwrap()
            .contains("AccessExclusiveLock on relation queued"));
        // The reader queues behind the holder and the DDL queued ahead of it.
        let reader_blockers: Vec<i64> = entry(reader_pid)["blocked_by"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_i64())
            .collect();
        assert!(
            reader_blockers.contains(&root) && reader_blockers.contains(&ddl_pid),
            "{reader_blockers:?}"
        );
        assert_eq!(
            entry(reader_pid)["query"].as_str(),
            Some("SELECT count(*) FROM queued;")
        );
        drop((reader, ddl, holder));
    }

    /// With the default thresholds a session blocked for a second is reported as Info, with the
    /// root blocker and the waiter in the evidence, long before it warns.
    #[tokio::test]
    async fn default_thresholds_report_a_blocked_session_as_info() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let holder = hold_queued_table(primary, &db, "LOCK TABLE queued;");
        let reader = queue_behind(primary, &db, "SELECT count(*) FROM queued;");
        let finding = testkit::finding_where(
            &BlockingLocks,
            &primary.dsn(),
            &[],
            evidence_is("root_pid", holder.pid()),
        )
        .await;
        assert_eq!(finding.severity, Severity::Info, "{finding:?}");
        assert_eq!(finding.object, format!("pid {}", holder.pid()));
        assert_eq!(integer(&finding, "waiting_sessions"), Some(1));
        assert!(number(&finding, "longest_wait_seconds").unwrap() >= 1.0);
        let waiters: Vec<i64> = finding
            .evidence("wait_tree")
            .and_then(|v| v.as_array())
            .expect("a wait tree")
            .iter()
            .filter_map(|e| e["pid"].as_i64())
            .collect();
        assert_eq!(waiters, vec![i64::from(reader.pid())]);
        drop((reader, holder));
    }

    #[tokio::test]
    async fn quiet_below_threshold() {
        let cluster = testing::shared();
        let primary = cluster.primary();
        let db = testing::fresh_database(cluster);
        let holder = hold_queued_table(primary, &db, "LOCK TABLE queued;");
        let _reader = queue_behind(primary, &db, "SELECT count(*) FROM queued;");
        // The Info tier starts after a second; raise it so only "below every threshold" is tested.
        let findings = testkit::findings(&BlockingLocks, &primary.dsn(), &[("info", 3600.0)]).await;
        assert!(
            !findings.iter().any(evidence_is("root_pid", holder.pid())),
            "{findings:?}"
        );
    }
}
