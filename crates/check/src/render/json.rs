//! `--output json`: a versioned document (see docs/check-json.md). Bump the version on any
//! incompatible change; adding fields is compatible.

use crate::render::worst;
use crate::TargetReport;
use serde_json::json as j;

/// Version of the JSON document's schema.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Renders reports as one pretty-printed JSON document.
pub fn json(reports: &[TargetReport]) -> String {
    let doc = j!({
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": "pgdbre",
        "tool_version": env!("CARGO_PKG_VERSION"),
        "severity": worst(reports),
        "targets": reports,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
