//! The mysql config, `{"url", "table", "columns", "timeout_ms",
//! "tls"}` (shared with postgres, see [`crate::sql`]), and its pure
//! validation together with the destination's auth.

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde_json::Value;

use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;
use crate::sql::{self, Dialect, SqlConfig};

/// A mysql destination's config, validated: the shape shared with
/// postgres, read with MySQL's URL schemes and parameters.
#[derive(Debug, Clone)]
pub struct MysqlConfig(pub SqlConfig);

impl KindConfig for MysqlConfig {
    type Context = NetworkPolicy;

    /// Checks a mysql config and its auth without I/O; returns the config with
    /// defaults filled in (`columns` `{"id": "id", "type": "type", "timestamp":
    /// "timestamp", "data": "data"}`, `timeout_ms: 10000`) or one error per
    /// invalid field.
    fn parse(config: &Value, auth: &Auth, policy: &NetworkPolicy) -> Result<Self, Vec<FieldError>> {
        sql::parse(Dialect::Mysql, config, auth, policy).map(Self)
    }

    fn to_json(&self) -> Value {
        self.0.to_json()
    }
}
