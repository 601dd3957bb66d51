//! Sequence exhaustion: sequences that have used most of their range.
//!
//! When a sequence reaches its `MAXVALUE` (or `MINVALUE` for a descending one) `nextval` fails
//! and every insert that needs an id fails with it: an outage that arrives on a predictable
//! date. A `serial` column's sequence is `integer`, so this is how an int4 key runs out; an
//! int4 column fed by a bigint sequence is [`super::integer_key_exhaustion`]'s business.

use super::round1;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct SequenceExhaustion;

static META: CheckMeta = CheckMeta {
    id: "sequence-exhaustion",
    category: Category::Schema,
    title: "Sequences near their limit",
    measures: "Share of each sequence's range (MINVALUE..MAXVALUE, in the direction of its increment) \
               already consumed by last_value.",
    params: &[
        Param { name: "warning", default: 75.0, unit: "percent", help: "share of the range used that warns" },
        Param { name: "critical", default: 90.0, unit: "percent", help: "share of the range used that is critical" },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many sequences, fullest first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "When a sequence reaches its limit, nextval() fails with 'reached maximum value of sequence' \
              and every insert into the tables it feeds fails until it is fixed.",
        action: "Widen the sequence (ALTER SEQUENCE ... AS bigint, instant) — and, if the column it feeds \
                 is integer, migrate the column to bigint first (a table rewrite: plan it, e.g. with a new \
                 column backfilled in batches). A CYCLE sequence wraps instead, which collides with \
                 existing keys.",
        next: "ALTER SEQUENCE <sequence> AS bigint;  -- after: ALTER TABLE <table> ALTER COLUMN <column> TYPE bigint;",
    },
};

const SQL: &str = "\
WITH sequences AS (
  SELECT s.seqrelid, n.nspname, c.relname, format_type(s.seqtypid, NULL) AS data_type,
         s.seqmin::int8 AS min_value, s.seqmax::int8 AS max_value, s.seqincrement::int8 AS increment_by,
         s.seqcycle AS cycle,
         -- the same privilege test as the pg_sequences view: no privilege, no value (and no error)
         CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE') THEN pg_sequence_last_value(c.oid) END::int8
           AS last_value
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT pg_is_other_temp_schema(n.oid) AND s.seqmax > s.seqmin
),
usage AS (
  SELECT q.*,
         (CASE WHEN q.increment_by > 0
               THEN 100.0 * (q.last_value::numeric - q.min_value) / (q.max_value::numeric - q.min_value)
               ELSE 100.0 * (q.max_value::numeric - q.last_value) / (q.max_value::numeric - q.min_value)
          END)::float8 AS percent_used
  FROM sequences q
  WHERE q.last_value IS NOT NULL
)
SELECT format('%I.%I', u.nspname, u.relname) AS sequence_name, u.data_type, u.last_value,
       u.min_value, u.max_value, u.increment_by, u.cycle, u.percent_used,
       (SELECT format('%I.%I.%I', tn.nspname, t.relname, a.attname)
        FROM pg_depend d
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_namespace tn ON tn.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.objid = u.seqrelid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        LIMIT 1) AS owned_by
FROM usage u
WHERE u.percent_used >= $1::float8
ORDER BY u.percent_used DESC, sequence_name
LIMIT $2::int8";

#[async_trait::async_trait]
impl Check for SequenceExhaustion {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let mut findings = Vec::new();
        for (severity, percent, row) in super::rows_by_percent_used(ctx, SQL).await? {
            let sequence: String = row.get("sequence_name");
            let data_type: String = row.get("data_type");
            let last_value: i64 = row.get("last_value");
            let increment: i64 = row.get("increment_by");
            let limit_value: i64 = if increment > 0 {
                row.get("max_value")
            } else {
                row.get("min_value")
            };
            let owned_by: Option<String> = row.get("owned_by");
            findings.push(
                Finding::new(
                    severity,
                    format!("sequence {sequence}"),
                    format!(
                        "{percent:.1}% of its {data_type} range used ({last_value} of {limit_value}; threshold {:.0}%){}",
                        ctx.param("warning"),
                        owned_by.as_deref().map(|c| format!(", feeds {c}")).unwrap_or_default()
                    ),
                )
                .with("sequence", sequence)
                .with("data_type", data_type)
                .with("last_value", last_value)
                .with("max_value", row.get::<_, i64>("max_value"))
                .with("min_value", row.get::<_, i64>("min_value"))
                .with("increment_by", increment)
                .with("cycle", row.get::<_, bool>("cycle"))
                .with("percent_used", round1(percent))
                .with("owned_by", owned_by),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{finding_about, integer, number, seeded_database, text};
    use super::*;
    use crate::testkit;
    use crate::Severity;

    #[tokio::test]
    async fn reports_an_integer_sequence_near_its_max() {
        let dsn = seeded_database(
            "CREATE SEQUENCE invoice_no AS integer;
              SELECT setval('invoice_no', 2000000000);
              CREATE TABLE tickets (id serial PRIMARY KEY);
              SELECT setval('tickets_id_seq', 1700000000);
              CREATE SEQUENCE countdown AS integer INCREMENT -1;
              SELECT nextval('countdown');
              CREATE SEQUENCE fresh AS integer;
              SELECT nextval('fresh');",
            "create sequences",
        );
        let findings = testkit::findings(&SequenceExhaustion, &dsn, &[]).await;
        let about = |name: &str| finding_about(&findings, "sequence", name);
        let invoice =
            about("public.invoice_no").unwrap_or_else(|| panic!("not reported: {findings:?}"));
        assert_eq!(invoice.severity, Severity::Critical);
        assert_eq!(number(&invoice, "percent_used"), Some(93.1));
        assert_eq!(text(&invoice, "data_type"), Some("integer"));
        assert_eq!(integer(&invoice, "last_value"), Some(2_000_000_000));
        assert_eq!(integer(&invoice, "max_value"), Some(2_147_483_647));
        let tickets =
            about("public.tickets_id_seq").unwrap_or_else(|| panic!("not reported: {findings:?}"));
        assert_eq!(tickets.severity, Severity::Warning);
        assert_eq!(text(&tickets, "owned_by"), Some("public.tickets.id"));
        assert!(about("public.countdown").is_none(), "{findings:?}");
        assert!(about("public.fresh").is_none(), "{findings:?}");
    }
}
