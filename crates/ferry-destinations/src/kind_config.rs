//! The one way from a kind's JSON `config` to its typed form: every kind's
//! config type is a [`KindConfig`]. A config submitted through the API and
//! a config read back from the store go through the same [`parse`], so a
//! stored destination can never hold a config its kind would refuse, and
//! what is stored is what [`to_json`] gives: the config with its defaults
//! filled in, in one normal form.
//!
//! [`parse`]: KindConfig::parse
//! [`to_json`]: KindConfig::to_json

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde_json::Value;

use crate::fields::join_errors;

/// A kind's config, read field by field together with the destination's
/// auth (the two are checked together: which auth a kind takes, and what
/// it may set, depends on the config, and the other way round).
pub trait KindConfig: Sized {
    /// What a config is checked against besides itself and its auth: the
    /// SSRF guard's policy for a kind that reaches a server, the
    /// directories file destinations may write under for `file`.
    type Context: ?Sized;

    /// Reads `config` without I/O, giving the typed config or one error
    /// per invalid field (`config.<name>`, `auth.<name>`), never stopping
    /// at the first, so a user fixes every mistake in one go. Error
    /// messages never contain secrets.
    fn parse(config: &Value, auth: &Auth, context: &Self::Context)
    -> Result<Self, Vec<FieldError>>;

    /// The config as it is stored, defaults filled in; [`parse`] reads it
    /// back to an equal config.
    ///
    /// [`parse`]: KindConfig::parse
    fn to_json(&self) -> Value;

    /// Checks a submitted config: the normalized config that is stored, or
    /// one error per invalid field.
    fn validate(
        config: &Value,
        auth: &Auth,
        context: &Self::Context,
    ) -> Result<Value, Vec<FieldError>> {
        Self::parse(config, auth, context).map(|config| config.to_json())
    }

    /// Reads a stored config, checking it again (the code may have become
    /// stricter since it was stored); the errors joined into one line,
    /// which `build` reports.
    fn from_stored(config: &Value, auth: &Auth, context: &Self::Context) -> Result<Self, String> {
        Self::parse(config, auth, context).map_err(|errors| join_errors(&errors))
    }
}
