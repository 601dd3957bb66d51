//! Black-box tests of `pgdbre slo` through the built binary: validation output and errors
//! (exit 3, `FILE:LINE: key: what is wrong`), and the generated rules checked and unit-tested by
//! the real `promtool` (Debian package `prometheus`, installed by scripts/setup.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pgdbre(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdbre"))
        .args(args)
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

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/slo.yaml")
}

fn stdout(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{}", text(output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn promtool(args: &[&str], dir: &Path) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool (Debian package `prometheus`; scripts/setup.sh installs it)")
}

/// Writes the rules (and, if asked, the generated tests) for `spec` into `dir`.
fn write_rules(spec: &Path, dir: &Path, with_tests: bool) {
    let spec = spec.to_str().unwrap();
    std::fs::write(
        dir.join("slo.rules.yaml"),
        stdout(&pgdbre(&["slo", "rules", spec])),
    )
    .unwrap();
    if with_tests {
        let tests = stdout(&pgdbre(&["slo", "rules", spec, "--tests"]));
        std::fs::write(dir.join("slo.tests.yaml"), tests).unwrap();
    }
}

fn invalid(spec: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, spec).unwrap();
    for command in ["validate", "rules"] {
        let out = pgdbre(&["slo", command, path.to_str().unwrap()]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(3), "{all}");
        let expect = format!("{}:{expect}", path.display());
        assert!(all.contains(&expect), "expected {expect:?} in\n{all}");
        assert!(out.stdout.is_empty(), "{all}");
        assert!(!all.contains("panicked"), "{all}");
    }
}

#[test]
fn validate_prints_one_line_per_slo() {
    let out = stdout(&pgdbre(&["slo", "validate", example().to_str().unwrap()]));
    assert!(
        out.contains("service payments-db, 5 SLOs, alerting profile standard-30d"),
        "{out}"
    );
    assert!(out.contains("  read-latency: read_latency_p99 < 40 ms, objective 99% over 30d; budget 1% of read probes"), "{out}");
    assert!(out.contains("  availability: error_rate < 0.1%, objective 99.9% over 30d; budget 0.1% of probes (1 per 1000, or 43m12s of total outage)"), "{out}");
    assert!(out.contains("  replica-lag: replica_lag <= 5 s, objective 99.9% over 30d; budget 43m12s (0.1% of minutes)"), "{out}");
    assert!(
        out.contains("  policy: burn rate > 2x over 1h on all SLOs: freeze-deploys"),
        "{out}"
    );
}

#[test]
fn explain_describes_good_events() {
    let out = stdout(&pgdbre(&[
        "slo",
        "explain",
        example().to_str().unwrap(),
        "read-latency",
    ]));
    assert!(
        out.contains("good = a read probe that succeeds within 40 ms"),
        "{out}"
    );
    assert!(!out.contains("availability"), "{out}");
}

#[test]
fn malformed_yaml_is_exit_3_with_file_and_line() {
    invalid(
        "service: x\nslos:\n  - name: [a,\n",
        "4: (document): not valid YAML",
    );
}

#[test]
fn semantic_errors_name_file_line_and_key() {
    let base = "service: payments-db\nslos:\n  - name: read-latency\n    sli: read_latency_p99\n    target: \"< 40\"\n    window: 30d\n";
    invalid(
        &base.replace("\"< 40\"", "\"< forty\""),
        "5: slos[0].target: `< forty`",
    );
    invalid(
        &base.replace("read_latency_p99", "latency_p99"),
        "4: slos[0].sli: unknown SLI kind",
    );
    invalid(
        &base.replace("\"< 40\"", "\"< 45\""),
        "5: slos[0].target: 45 ms is not a bucket bound",
    );
    invalid(
        &base.replace("30d", "a month"),
        "6: slos[0].window: `a month` is not a duration",
    );
    invalid(
        &format!("{base}    objective: 100\n"),
        "7: slos[0].objective: 100 is not an objective",
    );
    invalid(&format!("{base}  - name: read-latency\n    sli: error_rate\n    target: \"< 1\"\n    window: 30d\n"), "7: slos[1].name: duplicate SLO name");
    invalid(
        &format!("{base}alerting:\n  profile: nightly\n"),
        "8: alerting.profile: unknown profile `nightly`",
    );
    invalid(
        &format!("{base}    objective: 40\nburn_policies:\n  - if_burn_rate: \"> 2x\"\n    action: freeze-deploys\n"),
        "9: burn_policies[0].if_burn_rate: can never trigger",
    );
}

#[test]
fn missing_file_is_exit_3() {
    let out = pgdbre(&["slo", "validate", "/nonexistent/slo.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("cannot read SLO spec /nonexistent/slo.yaml"));
}

#[test]
fn promtool_accepts_the_rules_and_their_generated_tests() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(&example(), dir.path(), true);
    let out = promtool(&["check", "rules", "slo.rules.yaml"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let out = promtool(&["test", "rules", "slo.tests.yaml"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let tests = std::fs::read_to_string(dir.path().join("slo.tests.yaml")).unwrap();
    assert!(tests.contains("burn 21.6x pages"), "{tests}");
    assert!(
        tests.contains("just below the 6x page, does not page"),
        "{tests}"
    );
}

/// A hand-written promtool test, independent of the generator: read latency burning at 5.5x
/// (just below the 6x page of standard-30d) must not page but must open the 1d/2h ticket; at
/// 6.5x the 6h/30m page must fire.
const HAND_WRITTEN: &str = r#"
rule_files: [slo.rules.yaml]
evaluation_interval: 1m
tests:
  - name: 5.5x burn does not page
    interval: 1m
    input_series:
      - series: 'pgdbre_probe_total{server="db1:5432/app",probe="read",result="ok"}'
        values: '0+60x120'
      - series: 'pgdbre_probe_total{server="db1:5432/app",probe="read",result="error"}'
        values: '0+0x120'
      # 3.3 of 60 probes a minute slower than 40 ms: 5.5 % bad, 5.5x the 1 % budget.
      - series: 'pgdbre_probe_duration_seconds_bucket{server="db1:5432/app",probe="read",le="0.04"}'
        values: '0+56.7x120'
    promql_expr_test:
      # The recorded ratio, in tenths of a percent (promtool compares floats exactly).
      - expr: round(slo:pgdbre_error_ratio:rate1h{slo="read-latency"} * 1000)
        eval_time: 100m
        exp_samples:
          - labels: '{service="payments-db",slo="read-latency"}'
            value: 55
      - expr: ALERTS{alertname="PgdbreErrorBudgetBurn",severity="page"}
        eval_time: 100m
        exp_samples: []
      - expr: ALERTS{alertname="PgdbreErrorBudgetBurn",alertstate="firing"}
        eval_time: 100m
        exp_samples:
          - labels: 'ALERTS{alertname="PgdbreErrorBudgetBurn",alertstate="firing",long_window="1d",service="payments-db",severity="ticket",short_window="2h",slo="read-latency"}'
            value: 1
  - name: 6.5x burn pages on the 6h/30m pair only
    interval: 1m
    input_series:
      - series: 'pgdbre_probe_total{server="db1:5432/app",probe="read",result="ok"}'
        values: '0+60x120'
      - series: 'pgdbre_probe_duration_seconds_bucket{server="db1:5432/app",probe="read",le="0.04"}'
        values: '0+56.1x120'
    promql_expr_test:
      - expr: ALERTS{alertname="PgdbreErrorBudgetBurn",severity="page",alertstate="firing"}
        eval_time: 100m
        exp_samples:
          - labels: 'ALERTS{alertname="PgdbreErrorBudgetBurn",alertstate="firing",long_window="6h",service="payments-db",severity="page",short_window="30m",slo="read-latency"}'
            value: 1
"#;

#[test]
fn hand_written_promtool_test_just_below_the_page() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(&example(), dir.path(), false);
    std::fs::write(dir.path().join("hand.tests.yaml"), HAND_WRITTEN).unwrap();
    let out = promtool(&["test", "rules", "hand.tests.yaml"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
}

/// The generated tests must catch wrong alerts: with a page threshold moved, they fail.
#[test]
fn generated_tests_fail_when_thresholds_are_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("one.yaml");
    std::fs::write(
        &spec,
        "service: payments-db\nslos:\n  - name: read-latency\n    sli: read_latency_p99\n    target: \"< 40\"\n    window: 30d\n",
    )
    .unwrap();
    write_rules(&spec, dir.path(), true);
    let rules = std::fs::read_to_string(dir.path().join("slo.rules.yaml")).unwrap();
    let out = promtool(&["test", "rules", "slo.tests.yaml"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    // The 1h/5m page no longer fires at 21.6x; then the 6h/30m page fires at 5.4x.
    for (from, to) in [("> 0.144", "> 0.5"), ("> 0.06", "> 0.05")] {
        assert!(rules.contains(from), "{from} not in rules:\n{rules}");
        std::fs::write(dir.path().join("slo.rules.yaml"), rules.replace(from, to)).unwrap();
        let out = promtool(&["test", "rules", "slo.tests.yaml"], dir.path());
        assert!(
            !out.status.success(),
            "tests passed with `{from}` changed to `{to}`:\n{}",
            text(&out)
        );
    }
}
