//! Failures a DBRE meets in practice, each a clear error of the right kind: a full or read-only
//! file system (real small mounts), an S3 endpoint that refuses connections, wrong credentials,
//! a missing bucket and a mistyped location.

mod common;

use bytes::Bytes;
use pgdbre_lab::S3Server;
use pgdbre_storage::{Location, Storage, StorageError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A small file system mounted on a fresh directory; unmounted and removed on drop.
struct SmallFs {
    dir: PathBuf,
    image: Option<PathBuf>,
}

impl SmallFs {
    /// A tmpfs of `kib` KiB (with `extra` mount options), or a loop-mounted ext4 image of that
    /// size when tmpfs cannot be mounted. `Err` says why neither worked, so the test can skip.
    fn mount(kib: u64, extra: &str) -> Result<SmallFs, String> {
        let dir = tempfile::Builder::new()
            .prefix("pgdbre-smallfs-")
            .tempdir()
            .map_err(|error| format!("cannot create a mount point: {error}"))?
            .keep();
        let options = format!("size={kib}k{extra}");
        let tmpfs = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(&dir));
        if tmpfs.is_ok() {
            return Ok(SmallFs { dir, image: None });
        }
        let image = dir.with_extension("img");
        let ext4 = (|| {
            let file = std::fs::File::create(&image).map_err(|error| error.to_string())?;
            file.set_len(kib * 1024)
                .map_err(|error| error.to_string())?;
            run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))?;
            let options = format!("loop{extra}");
            run(Command::new("mount")
                .args(["-o", &options])
                .arg(&image)
                .arg(&dir))
        })();
        match ext4 {
            Ok(()) => Ok(SmallFs {
                dir,
                image: Some(image),
            }),
            Err(ext4_error) => {
                let _ = std::fs::remove_file(&image);
                let _ = std::fs::remove_dir(&dir);
                Err(format!(
                    "cannot mount a small file system: tmpfs: {}; loop ext4: {ext4_error}",
                    tmpfs.unwrap_err()
                ))
            }
        }
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if run(Command::new("umount").arg(&self.dir)).is_err() {
            // Something still holds it open: detach now, the kernel finishes when it is closed.
            let _ = run(Command::new("umount").arg("-l").arg(&self.dir));
        }
        let _ = std::fs::remove_dir(&self.dir);
        if let Some(image) = &self.image {
            let _ = std::fs::remove_file(image);
        }
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|error| error.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// Mounts a small file system, or prints why not and returns `None` (the test then skips).
fn small_fs(kib: u64, extra: &str) -> Option<SmallFs> {
    match SmallFs::mount(kib, extra) {
        Ok(fs) => Some(fs),
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

/// Bytes available on the file system holding `path`.
fn free_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `path` is a NUL-terminated string and `stats` a writable statvfs for the call.
    unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(path.as_ptr(), &mut stats), 0);
        stats.f_bavail as u64 * stats.f_frsize as u64
    }
}

/// `df` and `ls -laR` of a mount, for a failure message.
fn describe_fs(dir: &Path) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("df -k '{0}'; ls -laR '{0}'", dir.display()))
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned());
    output.unwrap_or_else(|error| format!("(could not run df: {error})"))
}

/// Every file (not directory) under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn full_filesystem_is_full_and_leaves_no_partial_object() {
    let Some(fs) = small_fs(1024, "") else { return };
    let repo = fs.path().join("repo");
    let storage = Storage::open(&Location::Local(repo.clone())).await.unwrap();
    let free_at_start = free_bytes(fs.path());

    let error = storage
        .put("blocks/ab/abcdef", Bytes::from(vec![7u8; 2 * 1024 * 1024]))
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Full { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "repository {}: no space left on device; free space or point --repo elsewhere",
            repo.display()
        )
    );
    // Atomic: nothing under the key, no staging file left taking the space.
    assert_eq!(storage.size("blocks/ab/abcdef").await.unwrap(), None);
    assert!(storage.list("").await.unwrap().is_empty());
    assert_eq!(files_under(&repo), Vec::<PathBuf>::new());

    // The failed put gave its space back (the kernel frees it once the last descriptor closes,
    // and a process forked meanwhile by a parallel test may hold one until it execs).
    let deadline = Instant::now() + Duration::from_secs(5);
    // (Less the directories the put created.)
    while free_bytes(fs.path()) + 64 * 1024 < free_at_start {
        assert!(Instant::now() < deadline, "{}", describe_fs(fs.path()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // So the repository keeps working.
    if let Err(error) = storage
        .put("blocks/ab/small", Bytes::from_static(b"fits"))
        .await
    {
        panic!("{error}\n{}", describe_fs(fs.path()));
    }
    assert_eq!(
        storage.get("blocks/ab/small").await.unwrap(),
        Bytes::from_static(b"fits")
    );
}

#[tokio::test]
async fn check_reports_a_full_filesystem() {
    let Some(fs) = small_fs(1024, "") else { return };
    let storage = Storage::open(&Location::Local(fs.path().join("repo")))
        .await
        .unwrap();
    storage.check().await.unwrap();
    // Something else fills the disk (a partial write keeps what fitted).
    let filler = fs.path().join("filler");
    assert!(std::fs::write(&filler, vec![0u8; 2 * 1024 * 1024]).is_err());
    let error = storage.check().await.unwrap_err();
    assert!(matches!(error, StorageError::Full { .. }), "{error:?}");
}

#[tokio::test]
async fn read_only_filesystem_is_permission_denied() {
    let Some(fs) = small_fs(64, ",ro") else {
        return;
    };
    let storage = Storage::open(&Location::Local(fs.path().to_path_buf()))
        .await
        .unwrap();
    let error = storage
        .put("manifest", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StorageError::PermissionDenied { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "repository {}: permission denied (read-only file system); check the owner and mode \
             of the directory, or whether it is mounted read-only",
            fs.path().display()
        )
    );
}

#[tokio::test]
async fn repository_path_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let error = Storage::open(&Location::Local(file.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "repository {}: it exists and is not a directory; point --repo at a directory",
            file.display()
        )
    );
}

#[tokio::test]
async fn unreachable_endpoint_fails_within_seconds() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let vars = [
        ("PGDBRE_S3_ENDPOINT", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];
    let location = Location::parse_with_env("s3://bucket/repo", &|name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.to_string())
    })
    .unwrap();
    let storage = Storage::open(&location).await.unwrap();

    let started = Instant::now();
    let error = storage.check().await.unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("connection refused reported after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    assert!(
        matches!(error, StorageError::Unreachable { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "cannot reach S3 endpoint {endpoint} (connection refused); check PGDBRE_S3_ENDPOINT \
             and that the server is running"
        )
    );
    let error = storage.get("manifest").await.unwrap_err();
    assert!(
        matches!(error, StorageError::Unreachable { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_names_the_tls_failure() {
    let server = S3Server::start().unwrap();
    let endpoint = format!("https://127.0.0.1:{}", server.port());
    let location = common::s3_location(&server, "repo", &[("PGDBRE_S3_ENDPOINT", &endpoint)]);
    let storage = Storage::open(&location).await.unwrap();
    let error = storage.check().await.unwrap_err();
    assert!(
        matches!(error, StorageError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("TLS handshake failed: received corrupt message"),
        "{error}"
    );
    assert!(
        error.to_string().contains("may be plain http://"),
        "{error}"
    );
}

#[tokio::test]
async fn wrong_secret_key_is_permission_denied_without_secrets() {
    let server = S3Server::start().unwrap();
    let wrong_secret = "wrong-secret-0123456789abcdef";
    let location = common::s3_location(&server, "repo", &[("AWS_SECRET_ACCESS_KEY", wrong_secret)]);
    let storage = Storage::open(&location).await.unwrap();

    let errors = [
        storage.check().await.unwrap_err(),
        storage.get("manifest").await.unwrap_err(),
        storage.list("").await.unwrap_err(),
    ];
    for error in errors {
        let message = error.to_string();
        eprintln!("{message}");
        assert!(
            matches!(error, StorageError::PermissionDenied { .. }),
            "{error:?}"
        );
        assert!(
            message.contains("check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"),
            "{message}"
        );
        assert!(!message.contains(wrong_secret), "{message}");
        assert!(!message.contains(server.secret_key()), "{message}");
        assert!(!format!("{error:?}").contains(wrong_secret));
    }
}

#[tokio::test]
async fn unknown_access_key_is_permission_denied() {
    let server = S3Server::start().unwrap();
    let location = common::s3_location(&server, "repo", &[("AWS_ACCESS_KEY_ID", "AKUNKNOWN")]);
    let storage = Storage::open(&location).await.unwrap();
    let error = storage.check().await.unwrap_err();
    eprintln!("{error}");
    assert!(
        matches!(error, StorageError::PermissionDenied { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains(server.secret_key()));
}

#[tokio::test]
async fn missing_bucket_says_so() {
    let server = S3Server::start().unwrap();
    let env: Vec<(String, String)> = server.env();
    let location = Location::parse_with_env("s3://no-such-bucket/repo", &|name| {
        env.iter()
            .find(|(var, _)| var == name)
            .map(|(_, value)| value.clone())
    })
    .unwrap();
    let storage = Storage::open(&location).await.unwrap();
    // Listing, not `check`: s3s-fs creates a missing bucket on PUT (AWS S3 refuses).
    let error = storage.list("").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "repository s3://no-such-bucket/repo at {}: the bucket does not exist (NoSuchBucket); \
             create it or correct the s3:// location",
            server.endpoint()
        )
    );
}

#[test]
fn invalid_location_text_is_refused() {
    for text in [
        "",
        "ftp://host/repo",
        "s3://",
        "s3://Bad_Bucket/x",
        "file://server/x",
    ] {
        match Location::parse(text) {
            Err(error @ StorageError::InvalidLocation { .. }) => {
                assert!(error.to_string().contains("s3://bucket/prefix"), "{error}");
            }
            other => panic!("{text:?}: expected InvalidLocation, got {other:?}"),
        }
    }
}
