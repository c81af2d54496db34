//! SQLite's queue statements (`crate::sql::queue` runs them) and its
//! batch completion: multi-row `VALUES` chunked below the bind limit. One
//! writer at a time, so leasing needs no row locks: `BEGIN IMMEDIATE` keeps
//! every other writer out.

use ferry_core::error::StoreResult;
use ferry_core::ports::Completion;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{db_error, rows_per_statement};
use crate::rows::delivery_columns;
use crate::sql::decode;
use crate::sql::queue::{AttemptRow, QueueStatements};
use crate::values::{micros, opt_micros};

/// The queue's statements, named so that a test can check their query plans.
pub(super) mod sql {
    use super::delivery_columns;
    use crate::deleted::deleted_error;

    /// Sets the lease on the rows the statement's WHERE clause picks.
    macro_rules! lease_set {
        () => {
            "UPDATE deliveries SET status = 'delivering', lease_owner = ?1, \
             lease_expires_at = ?2, updated_at = ?3 "
        };
    }

    /// Whether the row's destination still exists.
    macro_rules! destination_exists {
        () => {
            "EXISTS (SELECT 1 FROM destinations t WHERE t.id = deliveries.destination_id)"
        };
    }

    /// Gives leases back, due at the earlier of their due time and ?1; a
    /// delivery whose destination was deleted meanwhile fails instead.
    macro_rules! give_back {
        () => {
            concat!(
                "UPDATE deliveries SET status = CASE WHEN ",
                destination_exists!(),
                " THEN 'pending' ELSE 'failed' END, next_attempt_at = CASE WHEN ",
                destination_exists!(),
                " THEN MIN(COALESCE(next_attempt_at, ?1), ?1) END, last_error = CASE WHEN ",
                destination_exists!(),
                " THEN last_error ELSE '",
                deleted_error!(),
                "' END, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1 \
                 WHERE status = 'delivering' "
            )
        };
    }

    /// A completion's target status (`v.column3`), or `failed` when the
    /// attempt did not deliver and the destination was deleted meanwhile.
    macro_rules! abandoned {
        () => {
            concat!(
                "(v.column3 <> 'delivered' AND NOT ",
                destination_exists!(),
                ")"
            )
        };
    }

    pub const COMPLETE_SET: &str = concat!(
        "UPDATE deliveries SET status = CASE WHEN ",
        abandoned!(),
        " THEN 'failed' ELSE v.column3 END, next_attempt_at = CASE WHEN ",
        abandoned!(),
        " THEN NULL ELSE v.column4 END, last_error = CASE WHEN ",
        abandoned!(),
        " THEN '",
        deleted_error!(),
        "' ELSE v.column5 END, attempt_count = attempt_count + 1, \
         failures_counted = failures_counted + v.column6, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = v.column7 FROM ("
    );

    pub const CLAIM: &str = concat!(
        lease_set!(),
        "WHERE id IN (SELECT value FROM json_each(?4)) AND status = 'pending' RETURNING id"
    );

    pub const LEASE_DUE: &str = concat!(
        lease_set!(),
        "WHERE seq IN (SELECT seq FROM deliveries \
             WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ?3 \
             ORDER BY next_attempt_at LIMIT ?4) \
         RETURNING ",
        delivery_columns!()
    );

    pub const LEASE_DUE_EXCLUDING: &str = concat!(
        lease_set!(),
        "WHERE seq IN (SELECT d.seq FROM destinations t JOIN deliveries d ON d.seq IN ( \
                 SELECT x.seq FROM deliveries x WHERE x.destination_id = t.id \
                 AND x.status IN ('pending', 'retrying') AND x.next_attempt_at <= ?3 \
                 ORDER BY x.next_attempt_at LIMIT ?4) \
             WHERE t.id NOT IN (SELECT value FROM json_each(?5)) \
             ORDER BY d.next_attempt_at LIMIT ?4) \
         RETURNING ",
        delivery_columns!()
    );

    pub const LEASE_DESTINATION: &str = concat!(
        lease_set!(),
        "WHERE seq IN (SELECT seq FROM deliveries \
             WHERE destination_id = ?4 AND status IN ('pending', 'retrying') \
             ORDER BY next_attempt_at LIMIT ?5) \
         RETURNING ",
        delivery_columns!()
    );

    /// What a give-back statement returns of each delivery.
    macro_rules! given_back {
        () => {
            " RETURNING seq, id, destination_id, next_attempt_at, status"
        };
    }

    pub const RELEASE: &str = concat!(
        give_back!(),
        "AND id IN (SELECT value FROM json_each(?2)) AND lease_owner = ?3",
        given_back!()
    );

    pub const RECLAIM_EXPIRED: &str =
        concat!(give_back!(), "AND lease_expires_at < ?2", given_back!());

    pub const RECLAIM_FOREIGN: &str =
        concat!(give_back!(), "AND lease_owner IS NOT ?2", given_back!());

    pub const EXTEND: &str = "UPDATE deliveries SET lease_expires_at = ?1 \
         WHERE status = 'delivering' AND id IN (SELECT value FROM json_each(?2)) \
         AND lease_owner = ?3 RETURNING id";

    pub const NEXT_DUE: &str = "SELECT MIN(next_attempt_at) AS due FROM deliveries \
         WHERE status IN ('pending', 'retrying')";

    pub const NEXT_DUE_EXCLUDING: &str = "SELECT MIN((SELECT MIN(d.next_attempt_at) \
             FROM deliveries d \
             WHERE d.destination_id = t.id AND d.status IN ('pending', 'retrying'))) AS due \
         FROM destinations t WHERE t.id NOT IN (SELECT value FROM json_each(?1))";
}

pub(super) const STATEMENTS: QueueStatements = QueueStatements {
    claim: sql::CLAIM,
    lease_due: sql::LEASE_DUE,
    lease_due_excluding: sql::LEASE_DUE_EXCLUDING,
    lease_destination: sql::LEASE_DESTINATION,
    release: sql::RELEASE,
    reclaim_expired: sql::RECLAIM_EXPIRED,
    reclaim_foreign: sql::RECLAIM_FOREIGN,
    extend: sql::EXTEND,
    next_due: sql::NEXT_DUE,
    next_due_excluding: sql::NEXT_DUE_EXCLUDING,
};

/// Binds per row of the completion update.
const UPDATE_COLUMNS: usize = 7;
/// Binds per attempt row.
const ATTEMPT_COLUMNS: usize = 11;

/// Moves the deliveries whose lease the completing owner still holds;
/// returns each moved delivery's id and new status.
pub(super) async fn move_completed(
    conn: &mut SqliteConnection,
    batch: &[Completion],
) -> StoreResult<Vec<(String, String)>> {
    let mut moved = Vec::with_capacity(batch.len());
    for chunk in batch.chunks(rows_per_statement(UPDATE_COLUMNS)) {
        let mut qb = QueryBuilder::<Sqlite>::new(sql::COMPLETE_SET);
        qb.push_values(chunk, |mut b, c| {
            b.push_bind(c.delivery_id.as_str())
                .push_bind(c.owner.as_str())
                .push_bind(c.settled.status().as_str())
                .push_bind(opt_micros(c.settled.next_attempt_at()))
                .push_bind(c.settled.error())
                .push_bind(i64::from(c.settled.counted()))
                .push_bind(micros(c.audit.at));
        });
        qb.push(
            ") AS v WHERE deliveries.id = v.column1 AND deliveries.status = 'delivering' \
             AND deliveries.lease_owner = v.column2 RETURNING deliveries.id, deliveries.status",
        );
        let rows: Vec<(String, String)> = qb
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
        moved.extend(rows);
    }
    Ok(moved)
}

/// Records attempts, in order.
pub(super) async fn insert_attempts(
    conn: &mut SqliteConnection,
    attempts: &[AttemptRow<'_>],
) -> StoreResult<()> {
    for chunk in attempts.chunks(rows_per_statement(ATTEMPT_COLUMNS)) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO attempts (delivery_id, org_id, number, started_at, duration_ms, \
             outcome, status_code, error, request, response, receipt) ",
        );
        qb.push_values(chunk, |mut b, row| {
            let c = row.completion;
            let a = &c.attempt;
            b.push_bind(a.delivery_id.as_str())
                .push_bind(c.org_id.as_str())
                .push_bind(i64::from(a.number))
                .push_bind(micros(a.started_at))
                .push_bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
                .push_bind(decode::outcome_str(a.outcome))
                .push_bind(a.status_code.map(i64::from))
                .push_bind(a.error.as_deref())
                .push_bind(row.request.as_deref())
                .push_bind(row.response.as_deref())
                .push_bind(row.receipt.as_deref());
        });
        qb.build()
            .persistent(false)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}
