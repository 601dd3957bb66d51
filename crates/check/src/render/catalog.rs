//! Views of the catalog itself, all derived from the registry: `--list`, `--explain`,
//! `--print-thresholds`, and the reference page docs/checks.md.

use crate::{Category, Check, CheckMeta};
use std::fmt::Write;

/// `pgdbre check --list`: ids by category with their parameters' defaults.
pub fn list(catalog: &[&'static dyn Check]) -> String {
    let mut out = String::new();
    let mut category: Option<Category> = None;
    for check in catalog {
        let m = check.meta();
        if category != Some(m.category) {
            let _ = writeln!(out, "\n{}:", m.category.name());
            category = Some(m.category);
        }
        let params: Vec<String> = m
            .params
            .iter()
            .map(|p| format!("{}={}", p.name, p.default))
            .collect();
        let _ = write!(out, "  {:<34} {}", m.id, m.title);
        if !params.is_empty() {
            let _ = write!(out, "  [{}]", params.join(" "));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\n{} checks. Details: pgdbre check --explain ID",
        catalog.len()
    );
    out
}

fn requirements(m: &CheckMeta) -> String {
    let r = &m.requires;
    let mut needs = vec![format!("PostgreSQL {}+", r.min_major)];
    if r.pg_monitor {
        needs.push("pg_monitor".into());
    }
    if r.superuser {
        needs.push("superuser".into());
    }
    match r.role {
        crate::Role::Any => {}
        crate::Role::Primary => needs.push("primaries only".into()),
        crate::Role::Standby => needs.push("standbys only".into()),
    }
    needs.join(", ")
}

/// `pgdbre check --explain ID`: one check's description, thresholds and runbook.
pub fn explain(check: &dyn Check) -> String {
    let m = check.meta();
    let mut out = format!(
        "{} — {}\ncategory: {}\n\nMeasures: {}\n",
        m.id,
        m.title,
        m.category.name(),
        m.measures
    );
    if !m.params.is_empty() {
        out.push_str("\nThresholds (override with --set ID.PARAM=VALUE or a --thresholds file):\n");
        for p in m.params {
            let _ = writeln!(
                out,
                "  {:<20} default {} {} — {}",
                p.name, p.default, p.unit, p.help
            );
        }
    }
    let _ = writeln!(out, "\nRequires: {}", requirements(m));
    let _ = write!(
        out,
        "\nWhy it matters:\n  {}\n\nWhat to do:\n  {}\n\nNext:\n  {}\n",
        m.runbook.why, m.runbook.action, m.runbook.next
    );
    out
}

/// `pgdbre check --print-thresholds`: a thresholds file spelling out every default.
pub fn default_thresholds(catalog: &[&'static dyn Check]) -> String {
    let mut out = String::from(
        "# pgdbre check thresholds: every parameter at its default.\n\
         # Use with `pgdbre check --thresholds FILE`; keep only what you change.\n\
         # `enabled: false` under a check turns it off.\nchecks:\n",
    );
    for check in catalog {
        let m = check.meta();
        if m.params.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {}:", m.id);
        for p in m.params {
            let _ = writeln!(
                out,
                "    {}: {}  # {}, {}",
                p.name, p.default, p.unit, p.help
            );
        }
    }
    out
}

/// docs/checks.md: the reference page, one section per check in registry order.
pub fn markdown(catalog: &[&'static dyn Check]) -> String {
    let mut out = String::from(
        "# The `pgdbre check` catalog\n\n\
         Generated from the registry (`crates/check/src/checks/mod.rs`) by\n\
         `UPDATE_DOCS=1 cargo test -p pgdbre-check --test docs`; do not edit by hand.\n\n\
         | id | category | title |\n|---|---|---|\n",
    );
    for check in catalog {
        let m = check.meta();
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} |",
            m.id,
            m.id,
            m.category.name(),
            m.title
        );
    }
    for check in catalog {
        let m = check.meta();
        let _ = write!(
            out,
            "\n## {}\n\n**{}** — category `{}`; requires {}.\n\n{}\n",
            m.id,
            m.title,
            m.category.name(),
            requirements(m),
            m.measures
        );
        if !m.params.is_empty() {
            out.push_str("\n| parameter | default | unit | meaning |\n|---|---|---|---|\n");
            for p in m.params {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    p.name, p.default, p.unit, p.help
                );
            }
        }
        let _ = write!(
            out,
            "\n**Why it matters.** {}\n\n**What to do.** {}\n\n**Next.**\n\n```\n{}\n```\n",
            m.runbook.why, m.runbook.action, m.runbook.next
        );
    }
    out
}
