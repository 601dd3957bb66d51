//! A lab cluster: one primary and N streaming replicas in one directory, set up like a healthy
//! production server, torn down when dropped (or left running for `pgdbre lab up`).
//!
//! Layout of a cluster directory:
//! ```text
//! <dir>/lab.json          state of a persisted lab (pgdbre lab up)
//! <dir>/pgpass            password file for clients (the caller's)
//! <dir>/pgpass.server     the same, owned by the server user (replicas' primary_conninfo)
//! <dir>/archive/          WAL archive (archive_command copies here)
//! <dir>/tls/              lab CA and server certificate (when the build has OpenSSL)
//! <dir>/sock/             Unix sockets of all nodes (elsewhere under /tmp if <dir> is long)
//! <dir>/<node>/data       PGDATA; <dir>/<node>/server.log its log
//! ```

use crate::error::LabError;
use crate::install::PgInstall;
use crate::node::{quote_literal, Node, Role, StopMode};
use crate::process;
use crate::tls;
use crate::wait_until;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where temp clusters go, and how their directory names start.
const TEMP_PARENT: &str = "/tmp";
const TEMP_PREFIX: &str = "pgdbre-";
/// In a temp cluster: the pid of the process whose `Drop` will remove it.
const OWNER_FILE: &str = "owner.pid";
/// Name of the state file of a persisted lab.
const STATE_FILE: &str = "lab.json";
/// Config file, included from postgresql.conf, that holds every setting the lab makes.
const LAB_CONF: &str = "pgdbre.conf";
/// Unix-socket paths must fit in `sun_path` (108 bytes, NUL included).
const MAX_SOCKET_PATH: usize = 100;
/// How often a start is retried when another process took the chosen port first.
const PORT_ATTEMPTS: usize = 5;
/// Set to keep cluster directories (with logs) after tests, for debugging.
const KEEP_ENV: &str = "PGDBRE_LAB_KEEP";
/// How long replicas may take to report streaming.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What to start. `LabOptions::new(install)` gives a lone primary in a fresh temp directory.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The PostgreSQL installation to run.
    pub install: PgInstall,
    /// Number of streaming replicas besides the primary.
    pub replicas: usize,
    /// Directory for the cluster; `None` makes a fresh `/tmp/pgdbre-XXXXXX`. An existing
    /// directory must be empty.
    pub dir: Option<PathBuf>,
    /// Extra server settings, applied after (and so overriding) the lab's own.
    pub settings: Vec<(String, String)>,
    /// Cluster name: prefixes each node's `cluster_name` (seen in `ps` and the logs).
    pub name: String,
}

impl LabOptions {
    /// A primary without replicas in a fresh temp directory, named `pgdbre-lab`.
    pub fn new(install: PgInstall) -> LabOptions {
        LabOptions {
            install,
            replicas: 0,
            dir: None,
            settings: Vec::new(),
            name: "pgdbre-lab".to_string(),
        }
    }

    /// Sets the number of replicas.
    pub fn replicas(mut self, replicas: usize) -> LabOptions {
        self.replicas = replicas;
        self
    }

    /// Sets the cluster directory.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> LabOptions {
        self.dir = Some(dir.into());
        self
    }

    /// Adds a server setting (`name = 'value'` in the config file).
    pub fn setting(mut self, name: &str, value: &str) -> LabOptions {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the cluster name.
    pub fn name(mut self, name: &str) -> LabOptions {
        self.name = name.to_string();
        self
    }
}

/// One replica as the primary's `pg_stat_replication` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `application_name`, which the lab sets to the node name.
    pub name: String,
    /// `streaming`, `catchup`, `startup`, ...
    pub state: String,
    /// Bytes of WAL the replica has yet to replay; `None` before it reported any.
    pub replay_lag_bytes: Option<u64>,
}

/// What `lab.json` holds: enough to find and drive a persisted lab from another process.
#[derive(Debug, Serialize, Deserialize)]
struct LabState {
    name: String,
    install: PgInstall,
    socket_dir: PathBuf,
    ca_cert: Option<PathBuf>,
    nodes: Vec<Node>,
}

/// A running primary and its replicas. Dropping an owned cluster stops every node (immediate
/// mode) and removes its directory, also while unwinding from a panic; set `PGDBRE_LAB_KEEP=1`
/// to keep the directory and its logs.
#[derive(Debug)]
pub struct Cluster {
    name: String,
    dir: PathBuf,
    socket_dir: PathBuf,
    install: PgInstall,
    ca_cert: Option<PathBuf>,
    nodes: Vec<Node>,
    /// Whether this value stops and removes the cluster when dropped (false once persisted or
    /// when loaded from a state file).
    owned: bool,
    torn_down: AtomicBool,
}

impl Cluster {
    /// Starts a primary and `opts.replicas` replicas and waits until every replica streams.
    /// On failure everything started so far is stopped and removed again.
    pub fn start(opts: LabOptions) -> Result<Cluster, LabError> {
        let started = Instant::now();
        let dir = match &opts.dir {
            Some(dir) => prepare_dir(dir)?,
            None => {
                sweep_orphans();
                let dir = process::make_temp_dir(Path::new(TEMP_PARENT), TEMP_PREFIX)?;
                let owner = std::process::id().to_string();
                process::write_file(&dir.join(OWNER_FILE), &owner, 0o644, false)?;
                dir
            }
        };
        // From here on, Drop cleans up whatever exists, so every `?` below is safe.
        let mut cluster = Cluster {
            name: opts.name.clone(),
            socket_dir: dir.join("sock"),
            dir,
            install: opts.install.clone(),
            ca_cert: None,
            nodes: Vec::new(),
            owned: true,
            torn_down: AtomicBool::new(false),
        };
        if socket_path_len(&cluster.socket_dir) > MAX_SOCKET_PATH {
            cluster.socket_dir = process::make_temp_dir(Path::new("/tmp"), "pgdbre-sock-")?;
        }
        process::create_dir(&cluster.socket_dir, 0o755, true)?;
        process::create_dir(&cluster.dir.join("archive"), 0o700, true)?;

        let password = process::random_hex(16)?;
        let pgpass = format!("*:*:*:postgres:{password}\n");
        process::write_file(&cluster.passfile(), &pgpass, 0o600, false)?;
        process::write_file(&cluster.server_passfile(), &pgpass, 0o600, true)?;
        if opts.install.supports_tls() {
            cluster.ca_cert = Some(tls::generate(&cluster.dir.join("tls"))?.ca_cert);
        }

        tracing::debug!(elapsed = ?started.elapsed(), "lab files ready");
        cluster.start_primary(&opts, &password)?;
        tracing::debug!(elapsed = ?started.elapsed(), "primary running");
        cluster.start_replicas(&opts)?;
        tracing::debug!(elapsed = ?started.elapsed(), "replicas running");
        cluster.wait_for_streaming()?;
        tracing::info!(
            dir = %cluster.dir.display(),
            replicas = opts.replicas,
            elapsed = ?started.elapsed(),
            "lab cluster started"
        );
        Ok(cluster)
    }

    fn passfile(&self) -> PathBuf {
        self.dir.join("pgpass")
    }

    fn server_passfile(&self) -> PathBuf {
        self.dir.join("pgpass.server")
    }

    fn new_node(&self, name: &str, role: Role) -> Node {
        Node {
            name: name.to_string(),
            role,
            port: 0,
            node_dir: self.dir.join(name),
            data_dir: self.dir.join(name).join("data"),
            socket_dir: self.socket_dir.clone(),
            passfile: self.passfile(),
            ca_cert: self.ca_cert.clone(),
            install: self.install.clone(),
        }
    }

    fn start_primary(&mut self, opts: &LabOptions, password: &str) -> Result<(), LabError> {
        let mut node = self.new_node("primary", Role::Primary);
        process::create_dir(&node.node_dir, 0o700, true)?;
        let password_file = self.dir.join("password");
        process::write_file(&password_file, password, 0o600, true)?;
        let initdb = process::run(
            process::server_command(&self.install.bindir, "initdb")
                .arg("-D")
                .arg(node.data_dir())
                .args([
                    "--data-checksums",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ])
                .args(["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
                .args(["--no-sync", "--no-instructions"])
                .arg(format!("--pwfile={}", password_file.display())),
        );
        let removed = std::fs::remove_file(&password_file);
        initdb?;
        removed.map_err(|error| LabError::io("remove", &password_file, error))?;
        // initdb's pg_hba.conf already allows `local`/`host 127.0.0.1/32` replication with
        // scram-sha-256; the lab relies on those lines.
        let conf = node.data_dir().join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).map_err(|error| LabError::io("read", &conf, error))?;
        text.push_str(&format!("\ninclude '{LAB_CONF}'\n"));
        process::write_file(&conf, &text, 0o600, true)?;

        let started = self.start_node(opts, &mut node);
        self.nodes.push(node);
        started?;
        let primary = self.primary();
        for database in ["postgres", "template1"] {
            // template1 too, so every database created later has the extension.
            primary.psql_db(
                database,
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;",
            )?;
        }
        Ok(())
    }

    /// Clones and starts the replicas concurrently (each `pg_basebackup` mostly waits on I/O).
    /// Every replica is recorded, started or not, so that teardown finds all of them.
    fn start_replicas(&mut self, opts: &LabOptions) -> Result<(), LabError> {
        // Slots made up front and reserving WAL at once: otherwise one clone's checkpoint can
        // recycle WAL another clone still has to stream.
        let mut slots = String::new();
        for number in 1..=opts.replicas {
            slots.push_str(&format!(
                "SELECT pg_create_physical_replication_slot('{}', true);\n",
                slot_name(&format!("replica{number}"))
            ));
        }
        self.primary().psql(&slots)?;
        let this = &*self;
        let outcomes: Vec<(Node, Result<(), LabError>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..=opts.replicas)
                .map(|number| {
                    scope.spawn(move || {
                        let mut node = this.new_node(&format!("replica{number}"), Role::Replica);
                        let outcome = this
                            .clone_primary(&node)
                            .and_then(|()| this.start_node(opts, &mut node));
                        (node, outcome)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("replica start-up thread panicked"))
                .collect()
        });
        let mut first_error = None;
        for (node, outcome) in outcomes {
            self.nodes.push(node);
            if let Err(error) = outcome {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `pg_basebackup` of the primary into `node`'s data dir, with `standby.signal`,
    /// `primary_conninfo` (application_name = node name) and its physical slot.
    fn clone_primary(&self, node: &Node) -> Result<(), LabError> {
        process::create_dir(&node.node_dir, 0o700, true)?;
        let name = node.name();
        let conninfo = format!(
            "host={} port={} user=postgres passfile={} application_name={name}",
            self.socket_dir.display(),
            self.primary().port(),
            self.server_passfile().display()
        );
        process::run(
            process::server_command(&self.install.bindir, "pg_basebackup")
                .arg("-D")
                .arg(node.data_dir())
                .args(["-R", "-X", "stream", "-S", &slot_name(name)])
                .args(["--checkpoint=fast", "--no-sync", "-d", &conninfo]),
        )
        .map(drop)
    }

    /// Writes `node`'s config on a free port and starts it, choosing another port when something
    /// else took it first.
    fn start_node(&self, opts: &LabOptions, node: &mut Node) -> Result<(), LabError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = process::free_port()?;
            node.port = port;
            let conf = self.config(opts, node, port);
            process::write_file(&node.data_dir().join(LAB_CONF), &conf, 0o600, true)?;
            let log_before = std::fs::metadata(node.log_path()).map_or(0, |meta| meta.len());
            match node.start() {
                Ok(()) => return Ok(()),
                Err(error) if attempt < PORT_ATTEMPTS && port_was_taken(node, log_before) => {
                    tracing::info!(node = node.name(), port, "port taken, retrying: {error}");
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The lab's settings for `node` on `port`, then the caller's.
    fn config(&self, opts: &LabOptions, node: &Node, port: u16) -> String {
        let archive = self.dir.join("archive");
        let mut settings: Vec<(String, String)> = vec![
            ("port", port.to_string()),
            ("listen_addresses", "127.0.0.1".to_string()),
            (
                "unix_socket_directories",
                self.socket_dir.display().to_string(),
            ),
            ("cluster_name", format!("{}-{}", opts.name, node.name())),
            ("shared_preload_libraries", "pg_stat_statements".to_string()),
            ("logging_collector", "off".to_string()),
            ("log_line_prefix", "%m [%p] %q%u@%d ".to_string()),
            ("log_lock_waits", "on".to_string()),
            ("log_min_duration_statement", "1s".to_string()),
            ("log_checkpoints", "on".to_string()),
            ("log_autovacuum_min_duration", "10s".to_string()),
            ("wal_level", "replica".to_string()),
            ("max_wal_senders", "10".to_string()),
            ("hot_standby", "on".to_string()),
            ("archive_mode", "on".to_string()),
            (
                "archive_command",
                format!(
                    "test ! -f \"{0}/%f\" && cp %p \"{0}/%f\"",
                    archive.display()
                ),
            ),
            ("password_encryption", "scram-sha-256".to_string()),
            ("max_prepared_transactions", "10".to_string()),
            ("fsync", "on".to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        if self.install.major >= 13 {
            settings.push(("max_slot_wal_keep_size".to_string(), "1GB".to_string()));
        }
        if let Some(ca_cert) = &self.ca_cert {
            let tls_dir = ca_cert.parent().unwrap_or(&self.dir);
            settings.push(("ssl".to_string(), "on".to_string()));
            let cert = tls_dir.join("server.crt").display().to_string();
            let key = tls_dir.join("server.key").display().to_string();
            settings.push(("ssl_cert_file".to_string(), cert));
            settings.push(("ssl_key_file".to_string(), key));
        }
        settings.extend(opts.settings.iter().cloned());
        let mut text = String::from("# Written by pgdbre lab; postgresql.conf includes it.\n");
        for (name, value) in settings {
            text.push_str(&format!("{name} = {}\n", quote_literal(&value)));
        }
        text
    }

    /// Waits until the primary's `pg_stat_replication` shows every replica streaming.
    fn wait_for_streaming(&self) -> Result<(), LabError> {
        let wanted: Vec<&str> = self.replicas().iter().map(Node::name).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        wait_until(
            REPLICATION_TIMEOUT,
            "every replica to stream from the primary",
            || {
                let status = self.replication_status().ok()?;
                wanted
                    .iter()
                    .all(|name| {
                        status.iter().any(|replica| {
                            replica.name == *name
                                && replica.state == "streaming"
                                && replica.replay_lag_bytes.is_some()
                        })
                    })
                    .then_some(())
            },
        )
    }

    /// The primary.
    pub fn primary(&self) -> &Node {
        &self.nodes[0]
    }

    /// The replicas, in order (`replica1`, `replica2`, ...).
    pub fn replicas(&self) -> &[Node] {
        &self.nodes[1..]
    }

    /// Every node, primary first.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&Node, LabError> {
        self.nodes
            .iter()
            .find(|node| node.name() == name)
            .ok_or_else(|| LabError::UnknownNode {
                name: name.to_string(),
                known: self
                    .nodes
                    .iter()
                    .map(Node::name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The cluster directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster name given in [`LabOptions::name`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The installation the nodes run.
    pub fn install(&self) -> &PgInstall {
        &self.install
    }

    /// The lab CA certificate, for `sslrootcert=`; `None` when the build has no TLS (the PyPI
    /// PostgreSQL 18 wheel), in which case the servers run without `ssl`.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// The primary's view of its replicas (`pg_stat_replication`), ordered by name.
    pub fn replication_status(&self) -> Result<Vec<ReplicaStatus>, LabError> {
        let output = self.primary().psql(
            "SELECT application_name, state, \
             pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint \
             FROM pg_stat_replication ORDER BY application_name;",
        )?;
        Ok(output
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('|');
                Some(ReplicaStatus {
                    name: fields.next()?.to_string(),
                    state: fields.next()?.to_string(),
                    replay_lag_bytes: fields.next()?.parse().ok(),
                })
            })
            .collect())
    }

    /// Waits until every replica has replayed all WAL the primary has written so far, so that a
    /// write made on the primary before this call is visible on every replica after it.
    pub fn wait_for_replay(&self, timeout: Duration) -> Result<(), LabError> {
        let lsn = self.primary().psql("SELECT pg_current_wal_lsn();")?;
        let check = format!(
            "SELECT pg_last_wal_replay_lsn() >= {}::pg_lsn;",
            quote_literal(&lsn)
        );
        for replica in self.replicas() {
            wait_until(
                timeout,
                &format!("{} to replay up to {lsn}", replica.name()),
                || (replica.psql(&check).ok()? == "t").then_some(()),
            )?;
        }
        Ok(())
    }

    /// Leaves the cluster running past this value and records it in `<dir>/lab.json`, for
    /// `pgdbre lab up`; later processes find it with [`Cluster::load`]. Returns the state file.
    pub fn persist(mut self) -> Result<PathBuf, LabError> {
        let state = LabState {
            name: self.name.clone(),
            install: self.install.clone(),
            socket_dir: self.socket_dir.clone(),
            ca_cert: self.ca_cert.clone(),
            nodes: self.nodes.clone(),
        };
        let path = self.dir.join(STATE_FILE);
        let json = serde_json::to_string_pretty(&state).expect("lab state serialises");
        process::write_file(&path, &json, 0o644, false)?;
        // A persisted lab outlives this process; it must not look orphaned.
        match std::fs::remove_file(self.dir.join(OWNER_FILE)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(LabError::io("remove", self.dir.join(OWNER_FILE), error));
            }
            _ => {}
        }
        self.owned = false;
        Ok(path)
    }

    /// The lab persisted in `dir` (see [`Cluster::persist`]). Dropping the value leaves the
    /// servers running; [`Cluster::shutdown`] stops them and removes the directory.
    pub fn load(dir: &Path) -> Result<Cluster, LabError> {
        let path = dir.join(STATE_FILE);
        let no_lab = |reason: String| LabError::NoLab {
            dir: dir.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => no_lab(format!("it has no {STATE_FILE}")),
            _ => no_lab(format!("cannot read {}: {error}", path.display())),
        })?;
        let state: LabState = serde_json::from_str(&text).map_err(|error| {
            no_lab(format!(
                "{} is not a lab state file: {error}",
                path.display()
            ))
        })?;
        if state.nodes.is_empty() {
            return Err(no_lab(format!("{} lists no nodes", path.display())));
        }
        Ok(Cluster {
            name: state.name,
            dir: dir.to_path_buf(),
            socket_dir: state.socket_dir,
            install: state.install,
            ca_cert: state.ca_cert,
            nodes: state.nodes,
            owned: false,
            torn_down: AtomicBool::new(false),
        })
    }

    /// Stops every node (fast: sessions rolled back, checkpoint written) and removes the
    /// directory, for `pgdbre lab down`. Nothing is removed if a node fails to stop.
    pub fn shutdown(mut self) -> Result<(), LabError> {
        self.owned = false;
        self.torn_down.store(true, Ordering::SeqCst);
        self.stop_all(StopMode::Fast)?;
        self.remove_dirs()
    }

    /// Stops replicas first (so they do not log a vanished primary), then the primary. Tries
    /// every node and returns the first failure.
    fn stop_all(&self, mode: StopMode) -> Result<(), LabError> {
        let mut first_error = None;
        for node in self.nodes.iter().rev() {
            if let Err(error) = node.stop_with(mode) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn remove_dirs(&self) -> Result<(), LabError> {
        if !self.socket_dir.starts_with(&self.dir) {
            std::fs::remove_dir_all(&self.socket_dir)
                .map_err(|error| LabError::io("remove", &self.socket_dir, error))?;
        }
        std::fs::remove_dir_all(&self.dir).map_err(|error| LabError::io("remove", &self.dir, error))
    }

    /// Stops every node at once and removes the directories (unless `PGDBRE_LAB_KEEP` is set);
    /// runs once, however often it is called. Failures are printed: this runs in `Drop` and at
    /// process exit, where nothing can return them.
    pub(crate) fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(error) = self.stop_all(StopMode::Immediate) {
            eprintln!("pgdbre-lab: stopping {}: {error}", self.dir.display());
            return;
        }
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!(
                "pgdbre-lab: kept {} ({KEEP_ENV} is set)",
                self.dir.display()
            );
            return;
        }
        if let Err(error) = self.remove_dirs() {
            eprintln!("pgdbre-lab: {error}");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            // A failing test unwinds through here: show what the servers said before the
            // evidence is removed with the directory.
            if std::thread::panicking() {
                for node in self.nodes() {
                    eprintln!(
                        "pgdbre-lab: last lines of {} ({}):\n{}",
                        node.name(),
                        node.log_path().display(),
                        process::tail(&node.log_path(), 30)
                    );
                }
            }
            self.teardown();
        }
    }
}

/// Makes `dir` absolute and ready: created if missing, refused if it holds a lab or anything.
fn prepare_dir(dir: &Path) -> Result<PathBuf, LabError> {
    let dir = std::path::absolute(dir).map_err(|error| LabError::io("resolve", dir, error))?;
    if dir.join(STATE_FILE).exists() {
        let running = Cluster::load(&dir)
            .map(|lab| lab.nodes().any(Node::is_running))
            .unwrap_or(false);
        let state = if running {
            "is running"
        } else {
            "is recorded (stopped)"
        };
        return Err(LabError::DirInUse {
            reason: format!(
                "a lab {state} there; stop and remove it with `pgdbre lab down --dir {}`, or \
                 choose another directory",
                dir.display()
            ),
            dir,
        });
    }
    if let Ok(mut entries) = std::fs::read_dir(&dir) {
        if entries.next().is_some() {
            return Err(LabError::DirInUse {
                dir,
                reason: "it is not empty; choose a new or empty directory".to_string(),
            });
        }
    }
    process::create_dir(&dir, 0o755, false)?;
    Ok(dir)
}

/// Stops and removes temp clusters whose owning process died without its `Drop` running (a test
/// binary killed by a timeout or a signal), so that servers do not pile up on the machine.
/// Persisted labs have no owner file and are never touched.
fn sweep_orphans() {
    let Ok(entries) = std::fs::read_dir(TEMP_PARENT) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_temp_cluster = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
        let owner = std::fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|pid| pid.trim().parse::<libc::pid_t>().ok());
        let Some(owner) = owner.filter(|_| is_temp_cluster) else {
            continue;
        };
        if process::is_alive(owner) || dir.join(STATE_FILE).exists() {
            continue;
        }
        tracing::info!(dir = %dir.display(), owner, "removing a cluster left by a dead process");
        let postmasters = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|node| {
                std::fs::read_to_string(node.path().join("data/postmaster.pid")).ok()
            })
            .filter_map(|pid_file| pid_file.lines().next()?.trim().parse::<libc::pid_t>().ok());
        for pid in postmasters {
            // SIGQUIT is PostgreSQL's immediate shutdown; the data is thrown away anyway.
            // SAFETY: sending a signal; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGQUIT);
            }
            let gone = wait_until(
                Duration::from_secs(10),
                "an orphaned server to exit",
                || (!process::is_alive(pid)).then_some(()),
            );
            if gone.is_err() {
                // SAFETY: as above.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        // Another process may be sweeping the same directory; whoever is second finds less.
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The physical replication slot of replica `node`.
fn slot_name(node: &str) -> String {
    format!("{node}_slot")
}

fn socket_path_len(socket_dir: &Path) -> usize {
    socket_dir.as_os_str().len() + "/.s.PGSQL.65535.lock".len()
}

/// Whether the server log written since `log_before` says the port was in use.
fn port_was_taken(node: &Node, log_before: u64) -> bool {
    let log = node.log_contents();
    let new = log.get(log_before as usize..).unwrap_or(&log);
    new.contains("Address already in use") || new.contains("could not create any TCP/IP sockets")
}
