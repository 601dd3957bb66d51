//! Integer key exhaustion: `integer`/`smallint` columns fed by a sequence whose own range is
//! wider than the column's.
//!
//! The sequence will happily hand out 2147483648, and the insert then fails with "integer out of
//! range". `sequence-exhaustion` cannot see it coming (a bigint sequence is nowhere near its
//! max), so this check compares each sequence's last value with the type limit of the columns it
//! feeds: through a column default calling `nextval()` or as an identity column's sequence.

use super::round1;
use crate::{Category, Check, CheckError, CheckMeta, Context, Finding, Param, Requires, Runbook};

/// See the module docs.
pub struct IntegerKeyExhaustion;

static META: CheckMeta = CheckMeta {
    id: "integer-key-exhaustion",
    category: Category::Schema,
    title: "Integer columns running out of values",
    measures: "Share of an int2/int4 column's range already reached by the (wider) sequence that feeds \
               it via a nextval() default or identity.",
    params: &[
        Param { name: "warning", default: 75.0, unit: "percent", help: "share of the column type's range used that warns" },
        Param { name: "critical", default: 90.0, unit: "percent", help: "share of the column type's range used that is critical" },
        Param { name: "max_findings", default: 20.0, unit: "count", help: "report at most this many columns, fullest first" },
    ],
    requires: Requires::ANY,
    runbook: Runbook {
        why: "Once the sequence passes the column type's maximum (2147483647 for integer), every insert \
              fails with 'integer out of range' — an outage on a predictable date, usually of the busiest table.",
        action: "Migrate the column (and every foreign key column referencing it) to bigint before the date: \
                 ALTER COLUMN ... TYPE bigint rewrites the table under an ACCESS EXCLUSIVE lock, so on large \
                 tables add a bigint column, backfill it in batches, and swap it in. As a stopgap a sequence \
                 can be restarted in the negative range.",
        next: "SELECT conrelid::regclass, conname FROM pg_constraint WHERE confrelid = '<table>'::regclass AND contype = 'f';",
    },
};

const SQL: &str = "\
WITH links AS (
  -- DEFAULT nextval('s'): the column default depends on the sequence
  SELECT ad.adrelid AS table_oid, ad.adnum AS attnum, d.refobjid AS sequence_oid
  FROM pg_attrdef ad
  JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
   AND d.refclassid = 'pg_class'::regclass
  JOIN pg_sequence sq ON sq.seqrelid = d.refobjid
  UNION
  -- identity columns: the sequence depends internally on its column
  SELECT d.refobjid, d.refobjsubid, d.objid
  FROM pg_depend d
  JOIN pg_sequence sq ON sq.seqrelid = d.objid
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.deptype = 'i' AND d.refobjsubid > 0
),
columns AS (
  SELECT l.*, a.attname, format_type(a.atttypid, NULL) AS column_type,
         CASE a.atttypid WHEN 'int2'::regtype THEN 32767 ELSE 2147483647 END::int8 AS type_max,
         CASE a.atttypid WHEN 'int2'::regtype THEN -32768 ELSE -2147483648 END::int8 AS type_min,
         sq.seqincrement::int8 AS increment_by, sq.seqmax::int8 AS sequence_max,
         sq.seqmin::int8 AS sequence_min, format_type(sq.seqtypid, NULL) AS sequence_type,
         CASE WHEN has_sequence_privilege(l.sequence_oid, 'SELECT,USAGE')
              THEN pg_sequence_last_value(l.sequence_oid) END::int8 AS last_value
  FROM links l
  JOIN pg_attribute a ON a.attrelid = l.table_oid AND a.attnum = l.attnum AND NOT a.attisdropped
   AND a.atttypid IN ('int2'::regtype, 'int4'::regtype)
  JOIN pg_sequence sq ON sq.seqrelid = l.sequence_oid
),
usage AS (
  SELECT format('%I.%I', tn.nspname, t.relname) AS table_name, c.attname::text AS column_name,
         c.column_type, format('%I.%I', sn.nspname, s.relname) AS sequence_name, c.sequence_type,
         c.last_value, CASE WHEN c.increment_by > 0 THEN c.type_max ELSE c.type_min END AS type_limit,
         (CASE WHEN c.increment_by > 0 THEN 100.0 * c.last_value / c.type_max
               ELSE 100.0 * c.last_value / c.type_min END)::float8 AS percent_used
  FROM columns c
  JOIN pg_class t ON t.oid = c.table_oid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_class s ON s.oid = c.sequence_oid
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  -- a sequence that cannot leave the column's range is sequence-exhaustion's business
  WHERE c.last_value IS NOT NULL
    AND CASE WHEN c.increment_by > 0 THEN c.sequence_max > c.type_max ELSE c.sequence_min < c.type_min END
)
SELECT * FROM usage
WHERE percent_used >= $1::float8
ORDER BY percent_used DESC, table_name, column_name
LIMIT $2::int8";

#[async_trait::async_trait]
impl Check for IntegerKeyExhaustion {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Vec<Finding>, CheckError> {
        let mut findings = Vec::new();
        for (severity, percent, row) in super::rows_by_percent_used(ctx, SQL).await? {
            let table: String = row.get("table_name");
            let column: String = row.get("column_name");
            let column_type: String = row.get("column_type");
            let sequence: String = row.get("sequence_name");
            let last_value: i64 = row.get("last_value");
            let type_limit: i64 = row.get("type_limit");
            findings.push(
                Finding::new(
                    severity,
                    format!("column {table}.{column}"),
                    format!(
                        "{column_type} column at {percent:.1}% of its range: {sequence} is at {last_value} of \
                         {type_limit} (threshold {:.0}%)",
                        ctx.param("warning")
                    ),
                )
                .with("table", table)
                .with("column", column)
                .with("column_type", column_type)
                .with("sequence", sequence)
                .with("sequence_type", row.get::<_, String>("sequence_type"))
                .with("last_value", last_value)
                .with("type_max", type_limit)
                .with("percent_used", round1(percent)),
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
    async fn reports_int4_columns_fed_by_bigint_sequences() {
        let dsn = seeded_database(
            "CREATE SEQUENCE order_ids AS bigint;
              SELECT setval('order_ids', 2100000000);
              CREATE TABLE orders (id int4 PRIMARY KEY DEFAULT nextval('order_ids'));
              CREATE TABLE events (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);
              ALTER SEQUENCE events_id_seq AS bigint;
              SELECT setval('events_id_seq', 1700000000);
              CREATE TABLE wide (id bigint PRIMARY KEY DEFAULT nextval('order_ids'));
              CREATE TABLE plain (id serial PRIMARY KEY);
              SELECT setval('plain_id_seq', 2100000000);",
            "create integer keys",
        );
        let findings = testkit::findings(&IntegerKeyExhaustion, &dsn, &[]).await;
        let about = |table: &str| finding_about(&findings, "table", table);
        let orders = about("public.orders").unwrap_or_else(|| panic!("not reported: {findings:?}"));
        assert_eq!(orders.severity, Severity::Critical);
        assert_eq!(text(&orders, "column"), Some("id"));
        assert_eq!(text(&orders, "column_type"), Some("integer"));
        assert_eq!(text(&orders, "sequence"), Some("public.order_ids"));
        assert_eq!(integer(&orders, "last_value"), Some(2_100_000_000));
        assert_eq!(integer(&orders, "type_max"), Some(2_147_483_647));
        assert_eq!(number(&orders, "percent_used"), Some(97.8));
        let events =
            about("public.events").unwrap_or_else(|| panic!("identity not reported: {findings:?}"));
        assert_eq!(events.severity, Severity::Warning);
        assert_eq!(text(&events, "sequence"), Some("public.events_id_seq"));
        // A bigint column has room; an int4 serial's int4 sequence is sequence-exhaustion's.
        assert!(about("public.wide").is_none(), "{findings:?}");
        assert!(about("public.plain").is_none(), "{findings:?}");
    }
}
