//! How a source is stored: the columns, sealing on the way in, and decoding
//! on the way out (any backend's row); `sql::sources` runs the queries.

use chrono::DateTime;
use ferry_core::StoreError;
use ferry_core::crypto::Cipher;
use ferry_core::error::StoreResult;
use ferry_core::ids::{DestinationId, OrgId, SourceId};
use ferry_core::source::{Extractor, Source, Verification};

use crate::sql::decode::Columns;

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
pub(crate) fn decode(cipher: &Cipher, row: &impl Columns) -> StoreResult<(i64, Source)> {
    let opened = cipher
        .open(row.bytes("verification")?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let verification: Verification =
        serde_json::from_slice(&opened).map_err(|_| corrupt("verification"))?;
    let id_from = row
        .opt_text("id_from")?
        .map(|t| Extractor::parse(t).map_err(|_| corrupt("id_from")))
        .transpose()?;
    let source = Source {
        id: SourceId::parse(row.text("id")?).map_err(|_| corrupt("id"))?,
        org_id: OrgId::parse(row.text("org_id")?).map_err(|_| corrupt("org_id"))?,
        name: row.text("name")?.to_owned(),
        verification,
        id_from,
        type_from: Extractor::parse(row.text("type_from")?).map_err(|_| corrupt("type_from"))?,
        required: serde_json::from_str(row.text("required")?).map_err(|_| corrupt("required"))?,
        destinations: serde_json::from_str::<Vec<DestinationId>>(row.text("destinations")?)
            .map_err(|_| corrupt("destinations"))?,
        created_at: DateTime::from_timestamp_micros(row.int("created_at")?)
            .ok_or_else(|| corrupt("created_at"))?,
    };
    Ok((row.int("seq")?, source))
}
