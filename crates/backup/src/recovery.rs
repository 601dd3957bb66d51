//! What a restore writes so PostgreSQL recovers the copy: the recovery target settings and the
//! `restore_command`, appended to `postgresql.auto.conf` after removing any recovery settings
//! the backed-up file carried (a backup of a restored cluster must not recover to the old target).

use crate::wal::Lsn;
use std::path::Path;

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// Replay all available WAL.
    Latest,
    /// `recovery_target = 'immediate'`: stop as soon as the backup is consistent.
    Immediate,
    /// `recovery_target_time`, as PostgreSQL parses a `timestamptz`.
    Time(String),
    /// `recovery_target_lsn`.
    Lsn(Lsn),
    /// `recovery_target_xid`.
    Xid(u64),
    /// `recovery_target_name`: a restore point made with `pg_create_restore_point()`.
    Name(String),
}

/// What the server does when it reaches the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetAction {
    /// End recovery and accept writes.
    Promote,
    /// Pause replay (PostgreSQL's default), so the result can be inspected first.
    Pause,
    /// Stop the server.
    Shutdown,
}

impl TargetAction {
    fn as_str(self) -> &'static str {
        match self {
            TargetAction::Promote => "promote",
            TargetAction::Pause => "pause",
            TargetAction::Shutdown => "shutdown",
        }
    }
}

/// Settings a restore removes from the restored `postgresql.auto.conf` before adding its own.
const RECOVERY_SETTINGS: &[&str] = &[
    "restore_command",
    "recovery_end_command",
    "archive_cleanup_command",
    "recovery_target",
    "recovery_target_time",
    "recovery_target_lsn",
    "recovery_target_xid",
    "recovery_target_name",
    "recovery_target_inclusive",
    "recovery_target_timeline",
    "recovery_target_action",
    "primary_conninfo",
    "primary_slot_name",
];

/// `'text'` quoted as a configuration-file string.
fn conf_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// `text` quoted for `/bin/sh` when it needs it.
fn shell_quote(text: &str) -> String {
    let safe = |byte: u8| byte.is_ascii_alphanumeric() || b"/._-+:=@,".contains(&byte);
    if !text.is_empty() && text.bytes().all(safe) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The `restore_command` that fetches WAL from this repository with the `pgdbre` at `program`.
/// The key file's path is passed, never the key; a key from `PGDBRE_REPO_KEY` must be in the
/// server's environment.
pub fn restore_command(program: &Path, repository: &str, key_file: Option<&Path>) -> String {
    let mut command = format!(
        "{} wal fetch --repo {}",
        shell_quote(&program.to_string_lossy()),
        shell_quote(repository)
    );
    if let Some(key_file) = key_file {
        command.push_str(&format!(
            " --encryption-key-file {}",
            shell_quote(&key_file.to_string_lossy())
        ));
    }
    command.push_str(" %f %p");
    command
}

/// `auto_conf` without the recovery settings listed in [`RECOVERY_SETTINGS`].
pub fn strip_recovery_settings(auto_conf: &str) -> String {
    auto_conf
        .lines()
        .filter(|line| {
            let name = line.split(['=', ' ', '\t']).next().unwrap_or("").trim();
            !RECOVERY_SETTINGS.contains(&name.to_ascii_lowercase().as_str())
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The lines a restore appends to `postgresql.auto.conf`.
pub fn recovery_settings(
    label: &str,
    restore_command: &str,
    target: &RecoveryTarget,
    action: Option<TargetAction>,
) -> String {
    let mut text = format!("# Recovery settings added by pgdbre restore of backup {label}\n");
    text.push_str(&format!(
        "restore_command = {}\n",
        conf_quote(restore_command)
    ));
    let target_line = match target {
        RecoveryTarget::Latest => None,
        RecoveryTarget::Immediate => Some(("recovery_target", "immediate".to_string())),
        RecoveryTarget::Time(time) => Some(("recovery_target_time", time.clone())),
        RecoveryTarget::Lsn(lsn) => Some(("recovery_target_lsn", lsn.to_string())),
        RecoveryTarget::Xid(xid) => Some(("recovery_target_xid", xid.to_string())),
        RecoveryTarget::Name(name) => Some(("recovery_target_name", name.clone())),
    };
    if let Some((name, value)) = target_line {
        text.push_str(&format!("{name} = {}\n", conf_quote(&value)));
    }
    if let Some(action) = action {
        text.push_str(&format!(
            "recovery_target_action = {}\n",
            conf_quote(action.as_str())
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_command_quotes_what_needs_it() {
        let plain = restore_command(Path::new("/usr/bin/pgdbre"), "/var/lib/repo", None);
        assert_eq!(
            plain,
            "/usr/bin/pgdbre wal fetch --repo /var/lib/repo %f %p"
        );
        let odd = restore_command(
            Path::new("/opt/my tools/pgdbre"),
            "s3://b/p",
            Some(Path::new("/etc/k")),
        );
        assert_eq!(
            odd,
            "'/opt/my tools/pgdbre' wal fetch --repo s3://b/p --encryption-key-file /etc/k %f %p"
        );
        let quote = restore_command(Path::new("/p"), "/it's", None);
        assert_eq!(quote, "/p wal fetch --repo '/it'\\''s' %f %p");
    }

    #[test]
    fn settings_for_each_target() {
        let text = recovery_settings("L", "cmd '%f'", &RecoveryTarget::Latest, None);
        assert!(text.contains("restore_command = 'cmd ''%f'''\n"), "{text}");
        assert!(!text.contains("recovery_target"), "{text}");
        let text = recovery_settings(
            "L",
            "c",
            &RecoveryTarget::Time("2026-11-25 18:15:00+00".into()),
            Some(TargetAction::Promote),
        );
        assert!(
            text.contains("recovery_target_time = '2026-11-25 18:15:00+00'\n"),
            "{text}"
        );
        assert!(
            text.contains("recovery_target_action = 'promote'\n"),
            "{text}"
        );
        let lsn = RecoveryTarget::Lsn("0/3000100".parse().unwrap());
        assert!(
            recovery_settings("L", "c", &lsn, None).contains("recovery_target_lsn = '0/3000100'")
        );
        assert!(recovery_settings("L", "c", &RecoveryTarget::Xid(742), None)
            .contains("recovery_target_xid = '742'"));
        assert!(
            recovery_settings("L", "c", &RecoveryTarget::Immediate, None)
                .contains("recovery_target = 'immediate'")
        );
        let name = RecoveryTarget::Name("before-migration".into());
        assert!(recovery_settings("L", "c", &name, None)
            .contains("recovery_target_name = 'before-migration'"));
    }

    #[test]
    fn old_recovery_settings_are_removed() {
        let auto = "# Do not edit\nwork_mem = '64MB'\nrestore_command = 'old'\nrecovery_target_time = 'x'\nprimary_conninfo = 'host=a'\n";
        assert_eq!(
            strip_recovery_settings(auto),
            "# Do not edit\nwork_mem = '64MB'\n"
        );
    }
}
