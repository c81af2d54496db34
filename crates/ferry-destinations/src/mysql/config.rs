//! The mysql config, `{"url", "table", "columns", "timeout_ms",
//! "tls"}` (shared with mysql, see [`crate::sql`]), and its pure
//! validation together with the destination's auth.

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde_json::Value;

use crate::net_guard::NetworkPolicy;
use crate::sql::{self, Dialect};

/// Checks a mysql config and its auth without I/O; returns the config
/// with defaults filled in (`columns` `{"id": "id", "type": "type",
/// "timestamp": "timestamp", "data": "data"}`, `timeout_ms: 10000`) or one
/// error per invalid field.
pub fn validate(
    config: &Value,
    auth: &Auth,
    policy: &NetworkPolicy,
) -> Result<Value, Vec<FieldError>> {
    sql::parse(Dialect::Mysql, config, auth, policy).map(|c| c.to_json())
}
