//! Files generated from the registry — docs/checks.md and examples/thresholds.yaml — must match
//! it; this test fails when one is out of date. Regenerate both with
//! `UPDATE_DOCS=1 cargo test -p pgdbre-check --test docs`.

use pgdbre_check::{checks, render};
use std::path::Path;

fn assert_generated(relative: &str, expected: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, expected).unwrap_or_else(|e| panic!("write {relative}: {e}"));
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{relative} is out of date: run `UPDATE_DOCS=1 cargo test -p pgdbre-check --test docs`"
    );
}

#[test]
fn checks_reference_page_is_up_to_date() {
    assert_generated("docs/checks.md", &render::catalog::markdown(&checks::all()));
}

#[test]
fn example_thresholds_file_is_up_to_date() {
    assert_generated(
        "examples/thresholds.yaml",
        &render::catalog::default_thresholds(&checks::all()),
    );
}
