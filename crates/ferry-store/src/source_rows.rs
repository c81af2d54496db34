//! How a source is stored: the columns, sealing on the way in, and decoding
//! on the way out (generic over the backend's row type); `sources.rs` runs
//! the queries.

use chrono::DateTime;
use ferry_core::StoreError;
use ferry_core::crypto::Cipher;
use ferry_core::error::StoreResult;
use ferry_core::ids::{DestinationId, OrgId, SourceId};
use ferry_core::source::{Extractor, Source, Verification};
use sqlx::{ColumnIndex, Database, Decode, Row, Type};

macro_rules! source_columns {
    () => {
        "seq, id, org_id, name, verification, id_from, type_from, required, destinations, created_at"
    };
}
pub(crate) use source_columns;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("stored source has an invalid {what}"))
}

/// A source's columns as bound for an insert (the verification sealed).
pub(crate) struct Encoded {
    pub verification: Vec<u8>,
    pub id_from: Option<String>,
    pub type_from: String,
    pub required: String,
    pub destinations: String,
}

pub(crate) fn encode(cipher: &Cipher, source: &Source) -> StoreResult<Encoded> {
    let encode_err = |what: &str| StoreError::Corrupt(format!("cannot encode source {what}"));
    let verification =
        serde_json::to_vec(&source.verification).map_err(|_| encode_err("verification"))?;
    Ok(Encoded {
        verification: cipher.seal(&verification),
        id_from: source.id_from.as_ref().map(Extractor::as_text),
        type_from: source.type_from.as_text(),
        required: serde_json::to_string(&source.required)
            .map_err(|_| encode_err("required fields"))?,
        destinations: serde_json::to_string(&source.destinations)
            .map_err(|_| encode_err("destinations"))?,
    })
}

/// Decodes a row of `source_columns!` with its `seq`.
pub(crate) fn decode<R>(cipher: &Cipher, row: &R) -> StoreResult<(i64, Source)>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    R::Database: Database,
{
    let get_err = |c: &str, e: sqlx::Error| StoreError::Corrupt(format!("source column {c}: {e}"));
    let text = |c: &str| row.try_get::<String, _>(c).map_err(|e| get_err(c, e));
    let int = |c: &str| row.try_get::<i64, _>(c).map_err(|e| get_err(c, e));
    let sealed: Vec<u8> = row
        .try_get("verification")
        .map_err(|e| get_err("verification", e))?;
    let opened = cipher
        .open(&sealed)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let verification: Verification =
        serde_json::from_slice(&opened).map_err(|_| corrupt("verification"))?;
    let id_from = row
        .try_get::<Option<String>, _>("id_from")
        .map_err(|e| get_err("id_from", e))?
        .map(|t| Extractor::parse(&t).map_err(|_| corrupt("id_from")))
        .transpose()?;
    let source = Source {
        id: SourceId::parse(&text("id")?).map_err(|_| corrupt("id"))?,
        org_id: OrgId::parse(&text("org_id")?).map_err(|_| corrupt("org_id"))?,
        name: text("name")?,
        verification,
        id_from,
        type_from: Extractor::parse(&text("type_from")?).map_err(|_| corrupt("type_from"))?,
        required: serde_json::from_str(&text("required")?).map_err(|_| corrupt("required"))?,
        destinations: serde_json::from_str::<Vec<DestinationId>>(&text("destinations")?)
            .map_err(|_| corrupt("destinations"))?,
        created_at: DateTime::from_timestamp_micros(int("created_at")?)
            .ok_or_else(|| corrupt("created_at"))?,
    };
    Ok((int("seq")?, source))
}
