//! On PostgreSQL 17+ with `summarize_wal = on`, an incremental reads only the chunks holding
//! blocks the server's WAL summaries list as changed, and still restores exactly.

mod support;

use pgdbre_backup::{backup, restore, BackupType};
use pgdbre_lab::{Cluster, LabOptions, PgInstall};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_reads_only_changed_blocks_from_wal_summaries() {
    let install = PgInstall::for_tests();
    if install.major < 17 {
        eprintln!("skipped: WAL summaries need PostgreSQL 17+ (PGDBRE_TEST_PG=18 runs this test)");
        return;
    }
    let cluster = Cluster::start(
        LabOptions::new(install)
            .name("pgdbre-summaries")
            .setting("summarize_wal", "on"),
    )
    .unwrap();
    let primary = cluster.primary();
    primary
        .psql(
            "CREATE TABLE big (id int PRIMARY KEY, payload text); \
             INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) \
             FROM generate_series(1, 250000) g; VACUUM (FREEZE, ANALYZE) big; CHECKPOINT;",
        )
        .unwrap();
    let table_bytes: u64 = primary
        .psql("SELECT pg_relation_size('big')")
        .unwrap()
        .parse()
        .unwrap();
    let dir = open_tempdir();
    let repo = repo_in(dir.path());
    let full = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap();
    assert!(!full.manifest.wal_summaries);

    primary
        .psql("UPDATE big SET payload = 'changed' WHERE id IN (10, 50000, 200000); CHECKPOINT;")
        .unwrap();
    let changed = table_md5(primary, "postgres", "big");
    let incremental = backup(
        &conn(primary),
        backup_options(&repo, BackupType::Incremental),
    )
    .await
    .unwrap();
    let manifest = &incremental.manifest;
    assert!(
        manifest.wal_summaries,
        "the incremental did not use WAL summaries"
    );
    // Without summaries the modified table is read whole. With them only its changed chunks
    // are, plus small files of this young cluster that are always read (free-space maps,
    // pg_xact, files written within the safety margin of the parent's start).
    assert!(
        manifest.totals.bytes_read * 5 < table_bytes,
        "read {} bytes for a 3-row change of a {table_bytes}-byte table",
        manifest.totals.bytes_read
    );

    let target = dir.path().join("restored");
    restore(restore_options(&repo, &target, None))
        .await
        .unwrap();
    let server = start_restored(&cluster, &target);
    assert_eq!(table_md5(server.node(), "postgres", "big"), changed);
}
