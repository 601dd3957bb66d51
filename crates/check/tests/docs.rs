//! docs/checks.md is generated from the registry; this test fails when it is out of date.
//! Regenerate with `UPDATE_DOCS=1 cargo test -p pgdbre-check --test docs`.

use pgdbre_check::{checks, render};
use std::path::Path;

#[test]
fn checks_reference_page_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/checks.md");
    let expected = render::catalog::markdown(&checks::all());
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("write docs/checks.md");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/checks.md is out of date: run `UPDATE_DOCS=1 cargo test -p pgdbre-check --test docs`"
    );
}
