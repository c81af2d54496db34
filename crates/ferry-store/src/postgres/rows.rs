//! Row decoding for this backend: the shared decoders of `crate::rows`.

pub(super) use crate::rows::{
    api_key_columns, attempt_columns, audit_columns, delivery_columns, destination_columns,
    event_columns, org_columns,
};

crate::rows::row_decoders!(sqlx::postgres::PgRow, sqlx::Postgres);
