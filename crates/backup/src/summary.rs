//! Which blocks changed since the parent backup, from the server's WAL summaries (PostgreSQL
//! 17+ with `summarize_wal = on`), so an incremental reads only the chunks that hold them.
//!
//! The summaries for `[parent start LSN, this backup's start LSN)` on the parent's timeline list
//! every block a WAL record touched. That is complete for relation files: a change before the
//! parent's start was flushed by the parent's start checkpoint before the parent read the file,
//! and a change after this backup's start is replayed from this backup's WAL. A "limit block"
//! (the relation was created, truncated or dropped in the range) means the whole relation is
//! read. Only relation files under `base/` and `global/` are planned this way (tablespace paths
//! carry a version directory the summary does not name), and never free-space-map forks (their
//! changes are not WAL-logged; PostgreSQL's own incremental backup copies them whole); every
//! other file, and any file whose size changed, is handled as without summaries. When the summaries do not cover the whole range
//! (summarizer behind or off, timeline switch), the backup falls back to reading whole files.

use crate::chunk::CHUNK_SIZE;
use crate::page::PAGE_SIZE;
use crate::wal::{Lsn, TimelineId};
use pgdbre_pg::Session;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// `pg_default`'s and `pg_global`'s OIDs.
const DEFAULT_TABLESPACE: u32 = 1663;
const GLOBAL_TABLESPACE: u32 = 1664;

/// One fork of one relation: its path without the `.N` segment suffix.
type RelationFork = String;

/// The changed blocks, by relation file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ChangedBlocks {
    /// Chunk indexes (within the segment file) holding a changed block, by segment file path.
    chunks: HashMap<String, BTreeSet<u64>>,
    /// Relation forks created, truncated or dropped in the range: read every segment whole.
    whole: HashSet<RelationFork>,
}

/// One row of `pg_wal_summary_contents()`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SummaryRow {
    tablespace: u32,
    database: u32,
    relfilenode: u32,
    fork: i32,
    block: u64,
    /// The relation was created, truncated or dropped at `block`.
    is_limit: bool,
}

/// What to read of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadPlan {
    /// The summaries do not apply: decide as without them.
    NotCovered,
    /// Read only these chunk indexes; take the others from the parent.
    Chunks(BTreeSet<u64>),
}

impl ChangedBlocks {
    /// Adds one row of `pg_wal_summary_contents()`, for relation segments of `relseg_pages`.
    pub(crate) fn add(&mut self, row: SummaryRow, relseg_pages: u64) {
        let Some(fork_path) = fork_path(row.tablespace, row.database, row.relfilenode, row.fork)
        else {
            return;
        };
        if row.is_limit {
            self.whole.insert(fork_path);
            return;
        }
        let segment = row.block / relseg_pages;
        let chunk = (row.block % relseg_pages) * PAGE_SIZE as u64 / CHUNK_SIZE;
        let path = if segment == 0 {
            fork_path
        } else {
            format!("{fork_path}.{segment}")
        };
        self.chunks.entry(path).or_default().insert(chunk);
    }

    /// The plan for `path` (relative to PGDATA), whose size is unchanged since the parent.
    pub(crate) fn plan(&self, path: &str) -> ReadPlan {
        let fork_path = path.split_once('.').map_or(path, |(base, _)| base);
        let planned = (path.starts_with("base/") || path.starts_with("global/"))
            && crate::page::relation_segment(path).is_some();
        // Free-space-map changes are not WAL-logged, so summaries cannot vouch for them.
        let free_space_map = fork_path.ends_with("_fsm");
        if !planned || free_space_map || self.whole.contains(fork_path) {
            return ReadPlan::NotCovered;
        }
        ReadPlan::Chunks(self.chunks.get(path).cloned().unwrap_or_default())
    }
}

/// `base/<db>/<relfilenode>[_fsm|_vm|_init]` or `global/…` for a fork; `None` for tablespaces
/// other than the two built-in ones, and for unknown fork numbers.
fn fork_path(tablespace: u32, database: u32, relfilenode: u32, fork: i32) -> Option<String> {
    let suffix = match fork {
        0 => "",
        1 => "_fsm",
        2 => "_vm",
        3 => "_init",
        _ => return None,
    };
    match tablespace {
        DEFAULT_TABLESPACE => Some(format!("base/{database}/{relfilenode}{suffix}")),
        GLOBAL_TABLESPACE => Some(format!("global/{relfilenode}{suffix}")),
        _ => None,
    }
}

/// The blocks changed on `timeline` between `from` (the parent's start) and `to` (this
/// backup's start), or `None` when the server cannot say for the whole range (logged with why).
pub(crate) async fn changed_blocks(
    session: &Session,
    timeline: TimelineId,
    from: Lsn,
    to: Lsn,
    relseg_pages: u64,
    wait: Duration,
) -> Option<ChangedBlocks> {
    if session.info().version.major() < 17 {
        return None;
    }
    match summarized_changes(session, timeline, from, to, relseg_pages, wait).await {
        Ok(changed) => Some(changed),
        Err(reason) => {
            tracing::info!("not using WAL summaries ({reason}); reading changed files whole");
            None
        }
    }
}

async fn summarized_changes(
    session: &Session,
    timeline: TimelineId,
    from: Lsn,
    to: Lsn,
    relseg_pages: u64,
    wait: Duration,
) -> Result<ChangedBlocks, String> {
    let client = session.client();
    let failed = |error: tokio_postgres::Error| pgdbre_pg::redact(&error.to_string());
    let enabled: String = client
        .query_one("SELECT current_setting('summarize_wal')", &[])
        .await
        .map_err(failed)?
        .get(0);
    if enabled != "on" {
        return Err("summarize_wal is off".into());
    }
    // The summarizer runs behind the WAL; wait (bounded) until it has passed `to`.
    let deadline = Instant::now() + wait;
    loop {
        let row = client
            .query_one(
                "SELECT summarized_tli::int8, summarized_lsn::text FROM pg_catalog.pg_get_wal_summarizer_state()",
                &[],
            )
            .await
            .map_err(failed)?;
        let summarized_timeline = row.get::<_, i64>(0);
        let summarized: Lsn = row.get::<_, String>(1).parse()?;
        // Timeline 0: the summarizer has not started yet; keep waiting for it.
        if summarized_timeline != 0 && summarized_timeline != i64::from(timeline.0) {
            return Err(format!(
                "the server is on timeline {summarized_timeline}, the parent on {}",
                timeline.0
            ));
        }
        if summarized_timeline != 0 && summarized >= to {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the summarizer reached only {summarized} of {to} within {} s",
                wait.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (from_text, to_text) = (from.to_string(), to.to_string());
    let tli = i64::from(timeline.0);
    let rows = client
        .query(
            "SELECT start_lsn::text, end_lsn::text FROM pg_catalog.pg_available_wal_summaries() \
             WHERE tli = $1 AND end_lsn > $2::text::pg_lsn AND start_lsn < $3::text::pg_lsn ORDER BY start_lsn",
            &[&tli, &from_text, &to_text],
        )
        .await
        .map_err(failed)?;
    let mut ranges = Vec::with_capacity(rows.len());
    for row in &rows {
        ranges.push((
            row.get::<_, String>(0).parse::<Lsn>()?,
            row.get::<_, String>(1).parse::<Lsn>()?,
        ));
    }
    if !covers(&ranges, from, to) {
        return Err(format!(
            "the summaries {ranges:?} do not cover {from} to {to}"
        ));
    }
    let rows = client
        .query(
            "SELECT c.reltablespace::int8, c.reldatabase::int8, c.relfilenode::int8, c.relforknumber::int4, \
                    c.relblocknumber::int8, c.is_limit_block \
             FROM pg_catalog.pg_available_wal_summaries() s, \
                  LATERAL pg_catalog.pg_wal_summary_contents(s.tli, s.start_lsn, s.end_lsn) c \
             WHERE s.tli = $1 AND s.end_lsn > $2::text::pg_lsn AND s.start_lsn < $3::text::pg_lsn",
            &[&tli, &from_text, &to_text],
        )
        .await
        .map_err(failed)?;
    let mut changed = ChangedBlocks::default();
    for row in rows {
        let row = SummaryRow {
            tablespace: row.get::<_, i64>(0) as u32,
            database: row.get::<_, i64>(1) as u32,
            relfilenode: row.get::<_, i64>(2) as u32,
            fork: row.get(3),
            block: row.get::<_, i64>(4) as u64,
            is_limit: row.get(5),
        };
        changed.add(row, relseg_pages);
    }
    Ok(changed)
}

/// Whether the summary ranges (sorted by start) cover `[from, to)` without a gap.
fn covers(ranges: &[(Lsn, Lsn)], from: Lsn, to: Lsn) -> bool {
    let mut reached = from;
    for &(start, end) in ranges {
        if start > reached {
            return false;
        }
        reached = reached.max(end);
    }
    reached >= to
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = 131_072;

    fn row(
        tablespace: u32,
        database: u32,
        relfilenode: u32,
        fork: i32,
        block: u64,
        is_limit: bool,
    ) -> SummaryRow {
        SummaryRow {
            tablespace,
            database,
            relfilenode,
            fork,
            block,
            is_limit,
        }
    }

    fn lsn(text: &str) -> Lsn {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_map_to_segment_files_and_chunks() {
        let mut changed = ChangedBlocks::default();
        changed.add(row(1663, 5, 16384, 0, 0, false), SEG);
        let pages_per_chunk = CHUNK_SIZE / PAGE_SIZE as u64;
        changed.add(row(1663, 5, 16384, 0, pages_per_chunk + 1, false), SEG); // in chunk 1
        changed.add(row(1663, 5, 16384, 0, SEG + 3, false), SEG); // second segment
        changed.add(row(1664, 0, 1262, 2, 0, false), SEG);
        assert_eq!(
            changed.plan("base/5/16384"),
            ReadPlan::Chunks([0, 1].into())
        );
        assert_eq!(changed.plan("base/5/16384.1"), ReadPlan::Chunks([0].into()));
        assert_eq!(changed.plan("global/1262_vm"), ReadPlan::Chunks([0].into()));
        // Untouched relation file: nothing to read.
        assert_eq!(
            changed.plan("base/5/16999"),
            ReadPlan::Chunks(BTreeSet::new())
        );
    }

    #[test]
    fn limit_blocks_other_tablespaces_and_non_relation_files_are_not_planned() {
        let mut changed = ChangedBlocks::default();
        changed.add(row(1663, 5, 16384, 0, 0, true), SEG);
        changed.add(row(16500, 5, 16390, 0, 0, false), SEG);
        assert_eq!(changed.plan("base/5/16384"), ReadPlan::NotCovered);
        assert_eq!(changed.plan("base/5/16384.2"), ReadPlan::NotCovered);
        assert_eq!(changed.plan("base/5/pg_filenode.map"), ReadPlan::NotCovered);
        assert_eq!(changed.plan("base/5/16999_fsm"), ReadPlan::NotCovered);
        assert_eq!(changed.plan("pg_xact/0000"), ReadPlan::NotCovered);
        assert_eq!(
            changed.plan("pg_tblspc/16500/PG_18_202506291/5/16390"),
            ReadPlan::NotCovered
        );
    }

    #[test]
    fn coverage_needs_the_whole_range_without_gaps() {
        let ranges = [
            (lsn("0/1000000"), lsn("0/3000000")),
            (lsn("0/3000000"), lsn("0/5000000")),
        ];
        assert!(covers(&ranges, lsn("0/2000000"), lsn("0/4000000")));
        assert!(!covers(&ranges, lsn("0/0800000"), lsn("0/4000000")));
        assert!(!covers(&ranges, lsn("0/2000000"), lsn("0/6000000")));
        let gap = [
            (lsn("0/1000000"), lsn("0/2000000")),
            (lsn("0/2100000"), lsn("0/5000000")),
        ];
        assert!(!covers(&gap, lsn("0/1000000"), lsn("0/4000000")));
        assert!(!covers(&[], lsn("0/1000000"), lsn("0/4000000")));
    }
}
