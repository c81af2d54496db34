//! The adapter of a kind that connects to its server with a client of the
//! server's protocol (the brokers and databases, SMTP, SFTP): its config
//! checked under the SSRF guard's policy, and its deliverer built with the
//! catalog's connect time limit, the same for every such kind.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::FieldError;
use ferry_core::destination::{Auth, Destination, DestinationKind};
use ferry_core::ports::{Deliverer, DestinationAdapter, ExportOutputs};
use serde_json::Value;

use crate::CatalogOptions;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

/// What a kind's deliverer needs from the catalog to reach its server: the
/// connect time limit and the SSRF guard's policy.
#[derive(Debug, Clone)]
pub struct Reach {
    pub connect_timeout: Duration,
    pub policy: Arc<NetworkPolicy>,
}

/// A kind that connects to its server.
pub trait ClientKind: Send + Sync + 'static {
    const KIND: DestinationKind;

    /// The kind's config; a new one is checked under the SSRF guard's
    /// policy (IP-literal and `localhost` hosts it refuses).
    type Config: KindConfig<Context = NetworkPolicy>;

    /// Builds the deliverer of a destination of this kind, from its stored
    /// config read again.
    fn build(
        config: Self::Config,
        destination: &Destination,
        reach: &Reach,
    ) -> Result<Arc<dyn Deliverer>, String>;

    /// Where exports go on a destination of this kind; `None` (the
    /// default) when the kind does not take exports.
    fn export_outputs(
        _config: Self::Config,
        _destination: &Destination,
        _reach: &Reach,
    ) -> Option<Result<Arc<dyn ExportOutputs>, String>> {
        None
    }
}

/// The [`DestinationAdapter`] of a [`ClientKind`].
pub struct ClientAdapter<K> {
    reach: Reach,
    kind: PhantomData<fn() -> K>,
}

impl<K: ClientKind> ClientAdapter<K> {
    pub fn new(options: &CatalogOptions, policy: NetworkPolicy) -> Self {
        Self {
            reach: Reach {
                connect_timeout: options.connect_timeout,
                policy: Arc::new(policy),
            },
            kind: PhantomData,
        }
    }
}

impl<K: ClientKind> DestinationAdapter for ClientAdapter<K> {
    fn kind(&self) -> DestinationKind {
        K::KIND
    }

    fn validate(&self, config: &Value, auth: &Auth) -> Result<Value, Vec<FieldError>> {
        K::Config::validate(config, auth, &self.reach.policy)
    }

    fn build(&self, destination: &Destination) -> Result<Arc<dyn Deliverer>, String> {
        K::build(stored_config::<K>(destination)?, destination, &self.reach)
    }

    fn export_outputs(
        &self,
        destination: &Destination,
    ) -> Option<Result<Arc<dyn ExportOutputs>, String>> {
        match stored_config::<K>(destination) {
            Ok(config) => K::export_outputs(config, destination, &self.reach),
            Err(error) => Some(Err(error)),
        }
    }
}

/// A stored destination's config, read again under no policy: a
/// destination created under another one is refused when it connects
/// (every kind's connect goes through the guard), not when it is built.
fn stored_config<K: ClientKind>(destination: &Destination) -> Result<K::Config, String> {
    if destination.kind != K::KIND {
        return Err(format!(
            "not a {} destination: {}",
            K::KIND,
            destination.kind
        ));
    }
    let auth = &destination.secrets.auth;
    K::Config::from_stored(&destination.config, auth, &NetworkPolicy::allow_all())
}
