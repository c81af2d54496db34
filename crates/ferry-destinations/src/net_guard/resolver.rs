//! The DNS resolver of the HTTP clients (webhooks, S3): tokio's lookup,
//! then the SSRF guard drops every refused address, so a name cannot reach
//! a private network however its DNS answers change (DNS rebinding).

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::net_guard::NetworkPolicy;

/// Resolves with the system resolver (`tokio::net::lookup_host`) and keeps
/// the addresses the policy allows; fails with
/// [`ResolvedToRefused`](crate::net_guard::ResolvedToRefused) when none is
/// left. reqwest never calls it for IP-literal URLs: the deliverer checks
/// those itself.
pub struct GuardedResolver {
    pub policy: Arc<NetworkPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = policy.filter_resolved(&host, found)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}
