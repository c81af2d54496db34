//! PostgreSQL's queue statements (`crate::sql::queue` runs them) and its
//! batch completion (`UNNEST` over arrays). The deliveries table is shared
//! by every worker process.
//!
//! A lease is `status = 'delivering'` with `lease_owner` and
//! `lease_expires_at`. Leasing picks its rows with `FOR UPDATE SKIP LOCKED`:
//! concurrent workers each take rows the others have not locked, so no
//! delivery is leased twice and no worker waits for another. A claim names
//! its rows and re-checks `status = 'pending'` after any concurrent change,
//! so of two claimers only one wins. A completion moves a delivery only
//! while its lease is still held by the completing owner; the attempt is
//! recorded either way. A delivery given back (released or reclaimed) is
//! due at the earlier of its previous due time and now, so it keeps its
//! place in the queue.

use ferry_core::error::StoreResult;
use ferry_core::ports::Completion;
use sqlx::PgConnection;

use super::db_error;
use crate::rows::delivery_columns;
use crate::sql::decode;
use crate::sql::queue::{AttemptRow, QueueStatements};
use crate::values::{micros, opt_micros};

/// The queue's statements.
mod sql {
    use super::delivery_columns;
    use crate::deleted::deleted_error;

    /// Sets the lease on the rows the statement's WHERE clause picks. The
    /// leasing statements pick them as `seq = ANY(ARRAY(subquery))`: the
    /// subquery runs once and the update finds its rows by primary key.
    /// Written as `seq IN (subquery)`, a generic plan (sqlx prepares its
    /// statements, and PostgreSQL switches to a generic plan after five
    /// runs) does not know the LIMIT and may hash-join the subquery against
    /// a scan of the whole table.
    macro_rules! lease_set {
        () => {
            "UPDATE deliveries SET status = 'delivering', lease_owner = $1, \
             lease_expires_at = $2, updated_at = $3 "
        };
    }

    /// Whether the row's destination still exists.
    macro_rules! destination_exists {
        () => {
            "EXISTS (SELECT 1 FROM destinations t WHERE t.id = deliveries.destination_id)"
        };
    }

    /// Gives leases back, due at the earlier of their due time and $1; a
    /// delivery whose destination was deleted meanwhile fails instead.
    macro_rules! give_back {
        () => {
            concat!(
                "UPDATE deliveries SET status = CASE WHEN ",
                destination_exists!(),
                " THEN 'pending' ELSE 'failed' END, next_attempt_at = CASE WHEN ",
                destination_exists!(),
                " THEN LEAST(COALESCE(next_attempt_at, $1), $1) END, last_error = CASE WHEN ",
                destination_exists!(),
                " THEN last_error ELSE '",
                deleted_error!(),
                "' END, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
                 WHERE status = 'delivering' "
            )
        };
    }

    /// What a give-back statement returns of each delivery.
    macro_rules! given_back {
        () => {
            " RETURNING seq, id, destination_id, next_attempt_at, status"
        };
    }

    /// A completion's target status (`v.status`), or `failed` when the
    /// attempt did not deliver and the destination was deleted meanwhile.
    macro_rules! abandoned {
        () => {
            concat!(
                "(v.status <> 'delivered' AND NOT ",
                destination_exists!(),
                ")"
            )
        };
    }

    pub const CLAIM: &str = concat!(
        lease_set!(),
        "WHERE id = ANY($4) AND status = 'pending' RETURNING id"
    );

    pub const LEASE_DUE: &str = concat!(
        lease_set!(),
        "WHERE seq = ANY(ARRAY(SELECT seq FROM deliveries \
             WHERE status IN ('pending', 'retrying') AND next_attempt_at <= $3 \
             ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)) \
         RETURNING ",
        delivery_columns!()
    );

    /// With exclusions, an ordered walk of the due index would step over
    /// every due delivery of an excluded (paused or saturated) destination,
    /// however long its backlog. Instead each other destination offers its
    /// own oldest `$4` due deliveries (index seeks, no locks) and the oldest
    /// `$4` of those that no other worker has locked are leased: the same
    /// answer at a cost bounded by destinations × limit. (A worker racing
    /// another over the same candidates may get fewer than it could; it
    /// never gets one twice.) Deliveries whose destination is gone are
    /// `failed` anyway.
    ///
    /// `destination_id` is matched as a range of one value, ordered by
    /// `(destination_id, next_attempt_at)`: written as an equality, the
    /// planner assumes deliveries spread evenly over destinations and walks
    /// `deliveries_due` filtering by destination, which on a skewed backlog
    /// (the usual case when a destination is paused) reads all of it; the
    /// range makes `deliveries_due_by_destination` the only index that
    /// yields this order.
    pub const LEASE_DUE_EXCLUDING: &str = concat!(
        lease_set!(),
        "WHERE seq = ANY(ARRAY(SELECT d.seq FROM deliveries d \
             WHERE d.seq IN (SELECT c.seq FROM destinations t CROSS JOIN LATERAL ( \
                     SELECT x.seq FROM deliveries x \
                     WHERE x.destination_id >= t.id AND x.destination_id <= t.id \
                     AND x.status IN ('pending', 'retrying') AND x.next_attempt_at <= $3 \
                     ORDER BY x.destination_id, x.next_attempt_at LIMIT $4) AS c \
                 WHERE t.id <> ALL($5)) \
             AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= $3 \
             ORDER BY d.next_attempt_at LIMIT $4 FOR UPDATE OF d SKIP LOCKED)) \
         RETURNING ",
        delivery_columns!()
    );

    pub const LEASE_DESTINATION: &str = concat!(
        lease_set!(),
        "WHERE seq = ANY(ARRAY(SELECT seq FROM deliveries \
             WHERE destination_id = $4 AND status IN ('pending', 'retrying') \
             ORDER BY next_attempt_at LIMIT $5 FOR UPDATE SKIP LOCKED)) \
         RETURNING ",
        delivery_columns!()
    );

    pub const RELEASE: &str = concat!(
        give_back!(),
        "AND id = ANY($2) AND lease_owner = $3",
        given_back!()
    );

    pub const RECLAIM_EXPIRED: &str =
        concat!(give_back!(), "AND lease_expires_at < $2", given_back!());

    pub const RECLAIM_FOREIGN: &str = concat!(
        give_back!(),
        "AND lease_owner IS DISTINCT FROM $2",
        given_back!()
    );

    pub const EXTEND: &str = "UPDATE deliveries SET lease_expires_at = $1 \
         WHERE status = 'delivering' AND id = ANY($2) AND lease_owner = $3 RETURNING id";

    pub const NEXT_DUE: &str = "SELECT MIN(next_attempt_at) AS due FROM deliveries \
         WHERE status IN ('pending', 'retrying')";

    /// As in `LEASE_DUE_EXCLUDING`: one index seek per destination instead
    /// of a walk over the excluded destinations' backlog.
    pub const NEXT_DUE_EXCLUDING: &str = "SELECT MIN(c.due) AS due \
         FROM destinations t CROSS JOIN LATERAL ( \
             SELECT x.next_attempt_at AS due FROM deliveries x \
             WHERE x.destination_id >= t.id AND x.destination_id <= t.id \
             AND x.status IN ('pending', 'retrying') \
             ORDER BY x.destination_id, x.next_attempt_at LIMIT 1) AS c \
         WHERE t.id <> ALL($1)";

    /// Moves the deliveries whose lease the completing owner still holds.
    pub const COMPLETE: &str = concat!(
        "UPDATE deliveries SET status = CASE WHEN ",
        abandoned!(),
        " THEN 'failed' ELSE v.status END, next_attempt_at = CASE WHEN ",
        abandoned!(),
        " THEN NULL ELSE v.next_attempt_at END, last_error = CASE WHEN ",
        abandoned!(),
        " THEN '",
        deleted_error!(),
        "' ELSE v.last_error END, \
         attempt_count = attempt_count + 1, failures_counted = failures_counted + v.counted, \
         lease_owner = NULL, lease_expires_at = NULL, updated_at = v.at \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::int8[], \
                     $7::int8[]) AS v (id, owner, status, next_attempt_at, last_error, counted, at) \
         WHERE deliveries.id = v.id AND deliveries.status = 'delivering' \
         AND deliveries.lease_owner = v.owner RETURNING deliveries.id, deliveries.status"
    );

    /// Records attempts (also those whose lease was lost), in order.
    pub const ATTEMPTS: &str = "INSERT INTO attempts (delivery_id, org_id, number, started_at, \
         duration_ms, outcome, status_code, error, request, response, receipt) \
         SELECT v.delivery_id, v.org_id, v.number, v.started_at, v.duration_ms, v.outcome, \
         v.status_code, v.error, v.request, v.response, v.receipt \
         FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::text[], \
                     $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[]) WITH ORDINALITY \
              AS v (delivery_id, org_id, number, started_at, duration_ms, outcome, status_code, \
                    error, request, response, receipt, ord) \
         ORDER BY v.ord";
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

/// Moves the deliveries whose lease the completing owner still holds, with
/// one statement; returns each moved delivery's id and new status.
pub(super) async fn move_completed(
    conn: &mut PgConnection,
    batch: &[Completion],
) -> StoreResult<Vec<(String, String)>> {
    let n = batch.len();
    let mut ids = Vec::with_capacity(n);
    let mut owners = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut nexts = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut counted = Vec::with_capacity(n);
    let mut ats = Vec::with_capacity(n);
    for c in batch {
        ids.push(c.delivery_id.as_str());
        owners.push(c.owner.as_str());
        statuses.push(c.settled.status().as_str());
        nexts.push(opt_micros(c.settled.next_attempt_at()));
        errors.push(c.settled.error());
        counted.push(i64::from(c.settled.counted()));
        ats.push(micros(c.audit.at));
    }
    sqlx::query_as(sql::COMPLETE)
        .bind(ids)
        .bind(owners)
        .bind(statuses)
        .bind(nexts)
        .bind(errors)
        .bind(counted)
        .bind(ats)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)
}

/// Records attempts, in order, with one statement.
pub(super) async fn insert_attempts(
    conn: &mut PgConnection,
    attempts: &[AttemptRow<'_>],
) -> StoreResult<()> {
    let n = attempts.len();
    let mut ids = Vec::with_capacity(n);
    let mut orgs = Vec::with_capacity(n);
    let mut numbers = Vec::with_capacity(n);
    let mut started = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut codes = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut requests = Vec::with_capacity(n);
    let mut responses = Vec::with_capacity(n);
    let mut receipts = Vec::with_capacity(n);
    for row in attempts {
        let a = &row.completion.attempt;
        ids.push(a.delivery_id.as_str());
        orgs.push(row.completion.org_id.as_str());
        numbers.push(i64::from(a.number));
        started.push(micros(a.started_at));
        durations.push(i64::try_from(a.duration_ms).unwrap_or(i64::MAX));
        outcomes.push(decode::outcome_str(a.outcome));
        codes.push(a.status_code.map(i64::from));
        errors.push(a.error.as_deref());
        requests.push(row.request.as_deref());
        responses.push(row.response.as_deref());
        receipts.push(row.receipt.as_deref());
    }
    sqlx::query(sql::ATTEMPTS)
        .bind(ids)
        .bind(orgs)
        .bind(numbers)
        .bind(started)
        .bind(durations)
        .bind(outcomes)
        .bind(codes)
        .bind(errors)
        .bind(requests)
        .bind(responses)
        .bind(receipts)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(())
}
