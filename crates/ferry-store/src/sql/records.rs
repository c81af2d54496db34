//! The records an export reads (the `ExportStore` port's read half): one
//! page at a time in ascending `seq`, each page one short statement on the
//! readers, so that an export of millions of rows holds neither the writer
//! nor a read transaction that would keep SQLite's WAL from checkpointing.
//!
//! Filters that SQL answers exactly are pushed into the statement; an
//! event-type glob (`order.*`) is matched by the caller, which is why a
//! count is only an estimate then.

use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::export::{AttemptContext, ExportSource, Record, RecordFilter, RecordQuery};
use ferry_core::ids::OrgId;
use futures::TryStreamExt;
use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::decode::{self, Columns};
use super::json_page;
use super::{Backend, Tables};
use crate::values::micros;

/// Most records one page reads.
const MAX_RECORD_PAGE: u32 = 10_000;

/// What a page of each source selects: the columns the decoder reads
/// (each named by what follows its table's alias) and the table (aliased),
/// ending where the org is bound; none for destinations, which the caller
/// reads whole, and for the operational log, which is not in the store.
fn select(source: ExportSource) -> Option<(&'static [&'static str], &'static str)> {
    Some(match source {
        ExportSource::Events => (
            &[
                "x.seq",
                "x.id",
                "x.org_id",
                "x.event_type",
                "x.data",
                "x.metadata",
                "x.idempotency_key",
                "x.created_at",
                "x.traceparent",
                "x.tracestate",
            ],
            "FROM events x WHERE x.org_id = ",
        ),
        ExportSource::Deliveries => (
            &[
                "x.seq",
                "x.id",
                "x.org_id",
                "x.event_id",
                "x.destination_id",
                "x.event_type",
                "x.status",
                "x.attempt_count",
                "x.failures_counted",
                "x.next_attempt_at",
                "x.last_error",
                "x.created_at",
                "x.updated_at",
            ],
            "FROM deliveries x WHERE x.org_id = ",
        ),
        ExportSource::Attempts => (
            &[
                "x.seq",
                "x.delivery_id",
                "x.number",
                "x.started_at",
                "x.duration_ms",
                "x.outcome",
                "x.status_code",
                "x.error",
                "x.request",
                "x.response",
                "x.receipt",
                "d.event_id",
                "d.destination_id",
                "d.event_type",
            ],
            "FROM attempts x JOIN deliveries d ON d.id = x.delivery_id WHERE x.org_id = ",
        ),
        ExportSource::Audit => (
            &[
                "x.seq",
                "x.id",
                "x.org_id",
                "x.actor",
                "x.at",
                "x.entity_type",
                "x.entity_id",
                "x.action",
                "x.before",
                "x.after",
            ],
            "FROM audit x WHERE x.org_id = ",
        ),
        ExportSource::Destinations
        | ExportSource::Log
        | ExportSource::Metrics
        | ExportSource::Config => return None,
    })
}

/// A column's name in the page: what follows its table's alias.
fn name(column: &str) -> &str {
    column.split_once('.').map_or(column, |(_, name)| name)
}

/// Whether the backend hands this source's pages over as one JSON value
/// (see `json_page`). Not events: their data can be large, and a page of
/// them is better read row by row than held twice, as text and parsed.
fn as_json<B: Backend>(source: ExportSource) -> bool {
    B::JSON_PAGES && source != ExportSource::Events
}

/// The head of a count of the source's records, ending where the org is
/// bound.
fn count_head(source: ExportSource) -> Option<&'static str> {
    Some(match source {
        ExportSource::Events => "SELECT COUNT(*) AS n FROM events x WHERE x.org_id = ",
        ExportSource::Deliveries => "SELECT COUNT(*) AS n FROM deliveries x WHERE x.org_id = ",
        ExportSource::Attempts => {
            "SELECT COUNT(*) AS n FROM attempts x JOIN deliveries d ON d.id = x.delivery_id \
             WHERE x.org_id = "
        }
        ExportSource::Audit => "SELECT COUNT(*) AS n FROM audit x WHERE x.org_id = ",
        ExportSource::Destinations
        | ExportSource::Log
        | ExportSource::Metrics
        | ExportSource::Config => return None,
    })
}

/// The source's time column (creation; an attempt's start; an audit
/// record's time).
fn time_column(source: ExportSource) -> &'static str {
    match source {
        ExportSource::Attempts => "x.started_at",
        ExportSource::Audit => "x.at",
        _ => "x.created_at",
    }
}

/// When a record of the source last changed, for incremental exports:
/// created (an event), last updated (a delivery), ended (an attempt),
/// written (an audit record).
fn changed_column(source: ExportSource) -> &'static str {
    match source {
        ExportSource::Deliveries => "x.updated_at",
        ExportSource::Attempts => "(x.started_at + x.duration_ms * 1000)",
        _ => time_column(source),
    }
}

/// Whether an event type filter is a plain name SQL matches exactly (a
/// glob is matched by the caller).
fn exact_type(filter: &RecordFilter) -> Option<&str> {
    filter
        .event_type
        .as_deref()
        .filter(|pattern| !pattern.contains('*'))
}

fn push_filter<DB>(qb: &mut QueryBuilder<DB>, source: ExportSource, filter: &RecordFilter)
where
    DB: Database,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let time = time_column(source);
    if let Some(since) = filter.since {
        qb.push(format_args!(" AND {time} >= "))
            .push_bind(micros(since));
    }
    if let Some(until) = filter.until {
        qb.push(format_args!(" AND {time} < "))
            .push_bind(micros(until));
    }
    let changed = changed_column(source);
    if let Some(after) = filter.changed_after {
        qb.push(format_args!(" AND {changed} > "))
            .push_bind(micros(after));
    }
    if let Some(until) = filter.changed_until {
        qb.push(format_args!(" AND {changed} <= "))
            .push_bind(micros(until));
    }
    match source {
        ExportSource::Events => {
            if let Some(t) = exact_type(filter) {
                qb.push(" AND x.event_type = ").push_bind(t.to_owned());
            }
        }
        ExportSource::Deliveries => {
            if let Some(status) = filter.status {
                qb.push(" AND x.status = ").push_bind(status.as_str());
            }
            if let Some(id) = &filter.destination_id {
                qb.push(" AND x.destination_id = ")
                    .push_bind(id.to_string());
            }
            if let Some(t) = exact_type(filter) {
                qb.push(" AND x.event_type = ").push_bind(t.to_owned());
            }
        }
        ExportSource::Attempts => {
            if let Some(id) = &filter.destination_id {
                qb.push(" AND d.destination_id = ")
                    .push_bind(id.to_string());
            }
            if let Some(t) = exact_type(filter) {
                qb.push(" AND d.event_type = ").push_bind(t.to_owned());
            }
        }
        ExportSource::Audit => {
            if let Some(action) = &filter.action {
                qb.push(" AND x.action = ").push_bind(action.clone());
            }
            if let Some(actor) = &filter.actor {
                qb.push(" AND x.actor = ").push_bind(actor.clone());
            }
            if let Some(entity) = &filter.entity_id {
                qb.push(" AND x.entity_id = ").push_bind(entity.clone());
            }
        }
        ExportSource::Destinations
        | ExportSource::Log
        | ExportSource::Metrics
        | ExportSource::Config => {}
    }
}

fn record(source: ExportSource, row: &impl Columns) -> StoreResult<(i64, Record)> {
    Ok(match source {
        ExportSource::Events => {
            let (seq, event) = decode::event(row)?;
            (seq, Record::Event(event))
        }
        ExportSource::Deliveries => {
            let (seq, delivery) = decode::delivery(row)?;
            (seq, Record::Delivery(delivery))
        }
        ExportSource::Attempts => {
            let context = AttemptContext {
                event_id: decode::parsed(row, "event_id")?,
                event_type: row.text("event_type")?.to_owned(),
                destination_id: decode::parsed(row, "destination_id")?,
            };
            (
                decode::seq(row)?,
                Record::Attempt(decode::attempt(row)?, context),
            )
        }
        ExportSource::Audit => {
            let (seq, audit): (i64, AuditRecord) = decode::audit(row)?;
            (seq, Record::Audit(audit))
        }
        ExportSource::Destinations
        | ExportSource::Log
        | ExportSource::Metrics
        | ExportSource::Config => {
            return Err(decode::corrupt("seq", "only stored records are paged"));
        }
    })
}

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    <B::DB as Database>::Row: Columns,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> String: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> i64: Encode<'q, B::DB> + Type<B::DB>,
{
    pub(crate) async fn record_page(
        &self,
        org: &OrgId,
        query: &RecordQuery,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, Record)>> {
        let Some((columns, from)) = select(query.source) else {
            return Ok(Vec::new());
        };
        let names: Vec<&str> = columns.iter().map(|c| name(c)).collect();
        let json = as_json::<B>(query.source);
        let mut qb = QueryBuilder::<B::DB>::new("");
        if json {
            qb.push(format_args!(
                "SELECT json_group_array(json_array({}) ORDER BY seq) AS page FROM (",
                names.join(", ")
            ));
        }
        qb.push(format_args!("SELECT {} {from}", columns.join(", ")))
            .push_bind(org.as_str())
            .push(" AND x.seq > ")
            .push_bind(after);
        push_filter(&mut qb, query.source, &query.filter);
        qb.push(" ORDER BY x.seq LIMIT ")
            .push_bind(i64::from(limit.clamp(1, MAX_RECORD_PAGE)));
        if json {
            qb.push(")");
            let row = qb
                .build()
                .fetch_one(self.0.reader())
                .await
                .map_err(B::db_error)?;
            return json_page::rows(&names, row.text("page")?)?
                .iter()
                .map(|row| record(query.source, row))
                .collect();
        }
        // Each row is decoded as it arrives, while the database goes on
        // stepping to the next ones: decoding a page after it was read
        // whole would leave the reader idle meanwhile.
        let mut rows = qb.build().fetch(self.0.reader());
        let mut page = Vec::with_capacity(limit as usize);
        while let Some(row) = rows.try_next().await.map_err(B::db_error)? {
            page.push(record(query.source, &row)?);
        }
        Ok(page)
    }

    pub(crate) async fn count_records(&self, org: &OrgId, query: &RecordQuery) -> StoreResult<u64> {
        let Some(head) = count_head(query.source) else {
            return Ok(0);
        };
        let mut qb = QueryBuilder::<B::DB>::new(head);
        qb.push_bind(org.as_str());
        push_filter(&mut qb, query.source, &query.filter);
        let row = qb
            .build()
            .fetch_one(self.0.reader())
            .await
            .map_err(B::db_error)?;
        Ok(u64::try_from(row.int("n")?).unwrap_or(0))
    }
}
