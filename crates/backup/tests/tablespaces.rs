//! A cluster with a tablespace: the tablespace's files are backed up through the `pg_tblspc`
//! link and restored to the recorded location; a restore refuses to write into a tablespace
//! directory that still holds files (the live cluster's, when restoring on the same host), and
//! restores it elsewhere by name (`--tablespace-map`) next to the live cluster.

mod support;

use pgdbre_backup::{backup, restore, BackupError, BackupType, EntryKind};
use pgdbre_lab::restored::server_owner;
use pgdbre_lab::{Cluster, LabOptions, PgInstall};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tablespace_is_backed_up_and_restored_to_its_location() {
    let cluster =
        Cluster::start(LabOptions::new(PgInstall::for_tests()).name("pgdbre-tblspc")).unwrap();
    let primary = cluster.primary();
    let dir = open_tempdir();
    let location = dir.path().join("tablespace");
    std::fs::create_dir(&location).unwrap();
    let (uid, gid) = server_owner().unwrap();
    std::os::unix::fs::chown(&location, Some(uid), Some(gid)).unwrap();
    primary
        .psql(&format!(
            "CREATE TABLESPACE extra LOCATION '{}'; \
             CREATE TABLE t (id int PRIMARY KEY, payload text) TABLESPACE extra; \
             INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;",
            location.display()
        ))
        .unwrap();
    let source = table_md5(primary, "postgres", "t");
    let repo = repo_in(dir.path());
    let summary = backup(&conn(primary), backup_options(&repo, BackupType::Full))
        .await
        .unwrap();
    let manifest = &summary.manifest;
    let link = manifest
        .entries
        .iter()
        .find(|entry| entry.kind == EntryKind::Link && entry.path.starts_with("pg_tblspc/"))
        .expect("tablespace link recorded");
    assert_eq!(link.target.as_deref(), Some(location.to_str().unwrap()));
    assert!(manifest
        .tablespace_map
        .as_deref()
        .is_some_and(|map| map.contains(location.to_str().unwrap())));
    let tablespace_files = manifest
        .entries
        .iter()
        .filter(|entry| {
            entry.kind == EntryKind::File && entry.path.starts_with(&format!("{}/", link.path))
        })
        .count();
    assert!(
        tablespace_files > 0,
        "no files backed up through the tablespace link"
    );

    // The live cluster still uses the location: the restore must not write into it.
    let target = dir.path().join("restored");
    let error = restore(restore_options(&repo, &target, None))
        .await
        .unwrap_err();
    assert!(matches!(error, BackupError::Target(_)), "{error}");
    assert!(error.to_string().contains("not empty"), "{error}");
    assert!(!target.join("PG_VERSION").exists(), "refused after writing");

    // A name the backup does not have is refused with the ones it has.
    let mut misnamed = restore_options(&repo, &target, None);
    misnamed.tablespaces.by_key = vec![("nope".into(), dir.path().join("nope"))];
    let error = restore(misnamed).await.unwrap_err().to_string();
    assert!(
        error.contains("\"nope\"") && error.contains("extra (OID"),
        "{error}"
    );

    // Moved by name next to the live cluster: the copy starts, with the table, on the new
    // directory, and the live tablespace is untouched.
    let moved = dir.path().join("moved");
    let mut remapped = restore_options(&repo, &target, None);
    remapped.tablespaces.by_key = vec![("extra".into(), moved.clone())];
    restore(remapped).await.unwrap();
    let oid = link.path.strip_prefix("pg_tblspc/").unwrap();
    assert_eq!(
        std::fs::read_link(target.join(&link.path)).unwrap(),
        moved,
        "link not moved"
    );
    let map = std::fs::read_to_string(target.join("tablespace_map")).unwrap();
    assert!(map.contains(&format!("{oid} {}", moved.display())), "{map}");
    {
        let server = start_restored(&cluster, &target);
        assert_eq!(table_md5(server.node(), "postgres", "t"), source);
        let location = server
            .node()
            .psql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'extra'")
            .unwrap();
        assert_eq!(location, moved.display().to_string());
    }
    assert_eq!(table_md5(primary, "postgres", "t"), source);

    // Once the original is gone (a lost host), the restore recreates it.
    primary.stop().unwrap();
    std::fs::rename(&location, dir.path().join("tablespace.old")).unwrap();
    let _ = std::fs::remove_dir_all(&target);
    restore(restore_options(&repo, &target, None))
        .await
        .unwrap();
    let server = start_restored(&cluster, &target);
    assert_eq!(table_md5(server.node(), "postgres", "t"), source);
}
