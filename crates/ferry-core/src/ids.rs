//! Prefixed identifiers (`evt_…`, `dlv_…`): one newtype per entity so that an
//! event id can never be passed where a delivery id is expected.
//!
//! Generated ids are ULIDs (time-ordered), lower-cased, after the prefix.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ulid::Ulid;

/// An id string did not have the expected prefix or shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {expected} id")]
pub struct IdError {
    pub expected: &'static str,
}

/// A fresh, time-ordered unique token (a lower-case ULID): the suffix of
/// generated ids, and names such as a dispatcher's lease owner.
pub fn unique_token() -> String {
    Ulid::new().to_string().to_lowercase()
}

/// Longest accepted suffix after the prefix.
const MAX_SUFFIX: usize = 64;

/// The JSON schema of an id with this prefix: a string of the id's shape.
#[cfg(feature = "openapi")]
fn id_schema(prefix: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^{prefix}_[a-z0-9]{{1,{MAX_SUFFIX}}}$")))
        .examples([format!("{prefix}_01jq3v8k2m4n6p8r0t2v4x6z8a")])
        .into()
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-ordered random id.
            pub fn generate() -> Self {
                Self(format!(concat!($prefix, "_{}"), unique_token()))
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                let err = IdError { expected: $prefix };
                let suffix = s
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or(err.clone())?;
                if suffix.is_empty()
                    || suffix.len() > MAX_SUFFIX
                    || !suffix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                {
                    return Err(err);
                }
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema($prefix)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// An organization (tenant).
    OrgId, "org"
);
id_type!(
    /// An API key's public id (not the secret).
    ApiKeyId, "key"
);
id_type!(
    /// An event, for life: caller-keyed or content-derived.
    EventId, "evt"
);
id_type!(
    /// A destination.
    DestinationId, "dst"
);
id_type!(
    /// One event to one destination.
    DeliveryId, "dlv"
);
id_type!(
    /// An inbound source.
    SourceId, "src"
);
id_type!(
    /// An audit record.
    AuditId, "aud"
);
id_type!(
    /// A data export job (one run).
    ExportId, "exp"
);
id_type!(
    /// An export schedule (a cron trigger of exports).
    ScheduleId, "sch"
);

impl EventId {
    /// The id of an event that the caller keyed with `Idempotency-Key` or `id`:
    /// the same key in the same organization is always the same event.
    pub fn from_caller_key(org: &OrgId, key: &str) -> Self {
        Self::derived(&[b"key", org.as_str().as_bytes(), key.as_bytes()])
    }

    /// The id of an event without a caller key: derived from its content so
    /// that the same content in the same organization is the same event.
    /// `canonical_data` must be a canonical serialization (sorted keys).
    pub fn from_content(org: &OrgId, event_type: &str, canonical_data: &str) -> Self {
        Self::derived(&[
            b"content",
            org.as_str().as_bytes(),
            event_type.as_bytes(),
            canonical_data.as_bytes(),
        ])
    }

    /// The id of an event sent to one destination only (an integration
    /// port): `key` is the caller's id. Scoped by the destination, whose id
    /// is unique across organizations, so the same key sent to two
    /// destinations is two events, and the id can be computed before the
    /// event reaches a server (a client's spool does).
    pub fn for_destination(destination: &DestinationId, key: &str) -> Self {
        Self::derived(&[b"port", destination.as_str().as_bytes(), key.as_bytes()])
    }

    /// The id of an event sent to one destination without a caller id:
    /// derived from its content (`canonical_data` as in `from_content`).
    pub fn for_destination_content(
        destination: &DestinationId,
        event_type: &str,
        canonical_data: &str,
    ) -> Self {
        Self::derived(&[
            b"port-content",
            destination.as_str().as_bytes(),
            event_type.as_bytes(),
            canonical_data.as_bytes(),
        ])
    }

    fn derived(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            // Length-prefix every part so that ("ab","c") and ("a","bc") differ.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(format!(
            "evt_{}",
            Ulid::from_bytes(bytes).to_string().to_lowercase()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_keep_their_prefix() {
        let id = DeliveryId::generate();
        assert!(id.as_str().starts_with("dlv_"));
        assert_eq!(DeliveryId::parse(id.as_str()).unwrap(), id);
        assert!(EventId::parse(id.as_str()).is_err());
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "evt_",
            "evt",
            "evt_ABC",
            "evt_a-b",
            "dst_abc",
            &format!("evt_{}", "a".repeat(65)),
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_ids_are_stable_and_scoped_by_org() {
        let a = OrgId::parse("org_a").unwrap();
        let b = OrgId::parse("org_b").unwrap();
        assert_eq!(
            EventId::from_caller_key(&a, "k1"),
            EventId::from_caller_key(&a, "k1")
        );
        assert_ne!(
            EventId::from_caller_key(&a, "k1"),
            EventId::from_caller_key(&b, "k1")
        );
        assert_ne!(
            EventId::from_caller_key(&a, "k1"),
            EventId::from_content(&a, "k1", "")
        );
        assert!(EventId::parse(EventId::from_content(&a, "t", "{}").as_str()).is_ok());
    }

    #[test]
    fn destination_scoped_ids_differ_by_destination_and_from_org_ids() {
        let (d1, d2) = (
            DestinationId::parse("dst_a").unwrap(),
            DestinationId::parse("dst_b").unwrap(),
        );
        let org = OrgId::parse("org_a").unwrap();
        assert_eq!(
            EventId::for_destination(&d1, "k"),
            EventId::for_destination(&d1, "k")
        );
        assert_ne!(
            EventId::for_destination(&d1, "k"),
            EventId::for_destination(&d2, "k")
        );
        assert_ne!(
            EventId::for_destination(&d1, "k"),
            EventId::from_caller_key(&org, "k")
        );
        assert_ne!(
            EventId::for_destination_content(&d1, "t", "{}"),
            EventId::for_destination_content(&d2, "t", "{}")
        );
    }
}
