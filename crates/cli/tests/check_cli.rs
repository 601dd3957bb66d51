//! Black-box tests of `pgdbre check` through the built binary against real lab servers:
//! output formats, exit codes, and bad input (clear error, exit 3, no secret, no panic).

use pgdbre_lab::testing;
use std::process::{Command, Output};

const SECRET: &str = "S3cr3t-Pa55word";

fn pgdbre(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(args)
        .env_remove("PGPASSWORD")
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgdbre")
}

fn text(output: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_clean_failure(output: &Output, expect: &str) {
    let all = text(output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(all.contains(expect), "expected {expect:?} in\n{all}");
    assert!(!all.contains("panicked"), "{all}");
    assert!(!all.contains(SECRET), "secret leaked:\n{all}");
}

/// A TCP port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn unparsable_dsn_is_a_clear_error() {
    let out = pgdbre(&[
        "check",
        "-d",
        &format!("host=localhost password={SECRET} port=notaport"),
    ]);
    assert_clean_failure(&out, "port");
    let out = pgdbre(&["check", "-d", "hostt=localhost"]);
    assert_clean_failure(&out, "hostt");
}

#[test]
fn unreachable_server_is_unknown() {
    let port = closed_port();
    let dsn = format!("postgresql://postgres:{SECRET}@127.0.0.1:{port}/postgres?connect_timeout=3");
    for format in ["text", "json", "nagios"] {
        let out = pgdbre(&["check", "-d", &dsn, "-o", format]);
        assert_clean_failure(&out, &port.to_string());
    }
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    let primary = testing::shared().primary();
    let dsn = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=postgres password={SECRET} sslmode=disable",
        primary.port()
    );
    let out = pgdbre(&["check", "-d", &dsn]);
    assert_clean_failure(&out, "password authentication failed");
    let out = pgdbre(&["check", "-d", &dsn, "-o", "json"]);
    assert_clean_failure(&out, "password authentication failed");
}

#[test]
fn malformed_thresholds_name_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("thresholds.yaml");
    std::fs::write(
        &path,
        "checks:\n  long-running-transactions:\n    warning: soon\n",
    )
    .expect("write");
    let out = pgdbre(&["check", "--thresholds", path.to_str().unwrap()]);
    assert_clean_failure(
        &out,
        "thresholds.yaml:3: checks.long-running-transactions.warning: expected a number",
    );

    std::fs::write(
        &path,
        "checks:\n  long-runing-transactions:\n    warning: 5\n",
    )
    .expect("write");
    let out = pgdbre(&["check", "--thresholds", path.to_str().unwrap()]);
    assert_clean_failure(&out, "did you mean `long-running-transactions`");

    std::fs::write(&path, "checks: [unclosed\n").expect("write");
    let out = pgdbre(&["check", "--thresholds", path.to_str().unwrap()]);
    assert_clean_failure(&out, "not valid YAML");

    let out = pgdbre(&["check", "--thresholds", "/nonexistent/t.yaml"]);
    assert_clean_failure(&out, "/nonexistent/t.yaml");
}

#[test]
fn unknown_check_and_category_are_rejected() {
    assert_clean_failure(
        &pgdbre(&["check", "--only", "no-such-check"]),
        "unknown check id `no-such-check`",
    );
    assert_clean_failure(
        &pgdbre(&["check", "--category", "nope"]),
        "unknown category `nope`",
    );
    assert_clean_failure(
        &pgdbre(&["check", "--set", "long-running-transactions.bogus=1"]),
        "unknown parameter",
    );
    assert_clean_failure(&pgdbre(&["check", "--explain", "nope"]), "unknown check id");
}

#[test]
fn json_covers_primary_and_standby_concurrently() {
    let cluster = testing::shared();
    let primary = cluster.primary().dsn();
    let replica = cluster.replicas()[0].dsn();
    let out = pgdbre(&["check", "-d", &primary, "-d", &replica, "-o", "json"]);
    let all = text(&out);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{all}"));
    assert_eq!(doc["schema_version"], 1);
    let targets = doc["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["role"], "primary", "{all}");
    assert_eq!(targets[1]["role"], "standby", "{all}");
    for target in targets {
        let results = target["results"].as_array().expect("results");
        assert!(results.len() >= 35, "catalog has {} checks", results.len());
        for r in results {
            assert!(
                r["id"].is_string() && r["status"].is_string() && r["runbook"]["next"].is_string(),
                "{r}"
            );
        }
    }
    let worst = doc["severity"].as_str().unwrap();
    let code = out.status.code().unwrap();
    let expected = match worst {
        "ok" | "info" => 0,
        "warning" => 1,
        "critical" => 2,
        _ => 3,
    };
    assert_eq!(
        code, expected,
        "exit code follows the worst severity\n{all}"
    );
}

#[test]
fn nagios_and_prometheus_outputs() {
    let primary = testing::shared().primary().dsn();
    let out = pgdbre(&[
        "check",
        "-d",
        &primary,
        "-o",
        "nagios",
        "--only",
        "long-running-transactions",
    ]);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with("PGDBRE OK - 1 checks passed |"),
        "{}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(0));

    let out = pgdbre(&[
        "check",
        "-d",
        &primary,
        "-o",
        "prometheus",
        "--category",
        "transactions",
    ]);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("# TYPE pgdbre_check_status gauge"), "{body}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("pgdbre_check_up{") && l.ends_with(" 1")),
        "{body}"
    );
    assert!(
        body.contains("check=\"long-running-transactions\""),
        "{body}"
    );
}

#[test]
fn threshold_override_turns_a_finding_on() {
    let cluster = testing::shared();
    let db = testing::fresh_database(cluster);
    let _session = cluster
        .primary()
        .background_session(&db, "BEGIN; SELECT txid_current();")
        .expect("session");
    let dsn = cluster.primary().dsn();
    let found = pgdbre_lab::wait_until(
        std::time::Duration::from_secs(20),
        "long transaction reported",
        || {
            let out = pgdbre(&[
                "check",
                "-d",
                &dsn,
                "-o",
                "nagios",
                "--only",
                "long-running-transactions",
                "--set",
                "long-running-transactions.warning=1",
            ]);
            (out.status.code() == Some(1)).then_some(out)
        },
    )
    .expect("exit 1 once the transaction is older than 1 s");
    let line = String::from_utf8_lossy(&found.stdout);
    assert!(
        line.starts_with("PGDBRE WARNING - WARNING long-running-transactions pid "),
        "{line}"
    );
}

#[test]
fn list_and_explain() {
    let out = pgdbre(&["check", "--list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        list.contains("long-running-transactions") && list.contains("warning=300"),
        "{list}"
    );
    let out = pgdbre(&["check", "--explain", "long-running-transactions"]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains("Why it matters:") && page.contains("pg_stat_activity"),
        "{page}"
    );
}

#[test]
fn printed_default_thresholds_are_a_valid_thresholds_file() {
    let out = pgdbre(&["check", "--print-thresholds"]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("defaults.yaml");
    std::fs::write(&path, &out.stdout).expect("write");
    let primary = testing::shared().primary().dsn();
    let out = pgdbre(&[
        "check",
        "-d",
        &primary,
        "--thresholds",
        path.to_str().unwrap(),
        "--only",
        "deadlocks",
        "-o",
        "nagios",
    ]);
    assert_ne!(
        out.status.code(),
        Some(3),
        "the printed defaults must load:\n{}",
        text(&out)
    );
}

#[test]
fn usage_errors_are_unknown_not_critical() {
    let out = pgdbre(&["check", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let out = pgdbre(&["check", "--output", "xml"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(pgdbre(&["check", "--help"]).status.success());
}
