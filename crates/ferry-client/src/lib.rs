//! What the `ferry` command line and the load tool share: the client of
//! Ferry's HTTP API ([`ApiClient`], with the API's errors decoded), the
//! aligned tables both print, and the exit-code conventions (0 success,
//! 1 the API refused or a check failed, 2 a usage mistake).

pub mod api;
pub mod exit;
pub mod table;

pub use self::api::{ApiClient, ApiError, ApiResponse};
pub use self::exit::{UsageError, usage};
