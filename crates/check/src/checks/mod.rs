//! The registry: every check in the catalog, in display order. The single source of truth for
//! `--list`, `--explain`, threshold validation and the runner.

pub mod maintenance;
pub mod replication;
pub mod security;
pub mod transactions;

use crate::Check;

/// Every check in the catalog.
pub fn all() -> Vec<&'static dyn Check> {
    let mut all = Vec::new();
    all.extend(transactions::checks());
    all.extend(replication::checks());
    all.extend(maintenance::checks());
    all.extend(security::checks());
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_kebab_case_and_documented() {
        let mut seen = HashSet::new();
        for check in all() {
            let m = check.meta();
            assert!(seen.insert(m.id), "duplicate id {}", m.id);
            assert!(
                m.id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "id {} is not kebab-case",
                m.id
            );
            assert!(
                !m.title.is_empty() && !m.measures.is_empty(),
                "{} lacks a title or description",
                m.id
            );
            assert!(
                !m.runbook.why.is_empty()
                    && !m.runbook.action.is_empty()
                    && !m.runbook.next.is_empty()
            );
            for p in m.params {
                if p.name == "warning" {
                    assert!(
                        m.param("critical").is_some(),
                        "{} has warning without critical",
                        m.id
                    );
                }
            }
        }
    }
}
