//! `--output json`: a versioned document (see docs/check-json.md). Bump the version on any
//! incompatible change; adding fields is compatible.

use crate::render::worst;
use crate::{Severity, TargetReport};
use serde::Serialize;

/// Version of the JSON document's schema.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The document; serialized straight from structs so keys keep their documented order.
#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: &'static str,
    tool_version: &'static str,
    severity: Severity,
    targets: &'a [TargetReport],
}

/// Renders reports as one pretty-printed JSON document.
pub fn json(reports: &[TargetReport]) -> String {
    let doc = Document {
        schema_version: JSON_SCHEMA_VERSION,
        tool: "pgdbre",
        tool_version: env!("CARGO_PKG_VERSION"),
        severity: worst(reports),
        targets: reports,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
