//! Fan-out at ingest: which destinations get an event. The listed
//! destinations; else every enabled destination whose filter matches the
//! type; else the organization's default destinations.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::destination::{Destination, Filter};
use ferry_core::ports::Store;
use ferry_core::{DestinationId, FieldError, OrgId, StoreError};

use crate::cache::TtlCache;

/// How long a cached route table is trusted (other processes may change
/// destinations; this process invalidates on its own changes at once).
const TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Route {
    pub id: DestinationId,
    pub enabled: bool,
    pub is_default: bool,
    pub filter: Filter,
    /// Attempts its retry policy allows (`max_retries + 1`).
    pub max_attempts: u32,
}

impl From<&Destination> for Route {
    fn from(d: &Destination) -> Self {
        Self {
            id: d.id.clone(),
            enabled: d.enabled,
            is_default: d.is_default,
            filter: d.filter.clone(),
            max_attempts: d.retry.max_retries.saturating_add(1),
        }
    }
}

/// Each organization's routes.
pub struct RouteCache(TtlCache<OrgId, Arc<Vec<Route>>>);

impl Default for RouteCache {
    fn default() -> Self {
        Self(TtlCache::new(TTL))
    }
}

impl RouteCache {
    pub async fn routes(
        &self,
        store: &dyn Store,
        org: &OrgId,
    ) -> Result<Arc<Vec<Route>>, StoreError> {
        if let Some(routes) = self.0.get(org) {
            return Ok(routes);
        }
        let routes: Arc<Vec<Route>> = Arc::new(
            store
                .org_destinations(org)
                .await?
                .iter()
                .map(Route::from)
                .collect(),
        );
        self.0.put(org.clone(), routes.clone());
        Ok(routes)
    }

    /// The routes, read again when one of `named` is missing from the
    /// cached table: a destination made through another process a moment
    /// ago is not called unknown for the cache's lifetime.
    pub async fn routes_with(
        &self,
        store: &dyn Store,
        org: &OrgId,
        named: &[DestinationId],
    ) -> Result<Arc<Vec<Route>>, StoreError> {
        let routes = self.routes(store, org).await?;
        if named.iter().all(|id| routes.iter().any(|r| &r.id == id)) {
            return Ok(routes);
        }
        self.invalidate(org);
        self.routes(store, org).await
    }

    pub fn invalidate(&self, org: &OrgId) {
        self.0.forget(org);
    }
}

/// Decides the destinations of one event.
pub fn resolve(
    routes: &[Route],
    event_type: &str,
    listed: Option<&[DestinationId]>,
) -> Result<Vec<DestinationId>, Vec<FieldError>> {
    if let Some(listed) = listed {
        let mut errors = Vec::new();
        let mut chosen: Vec<DestinationId> = Vec::with_capacity(listed.len());
        for (i, id) in listed.iter().enumerate() {
            if !routes.iter().any(|r| &r.id == id) {
                errors.push(FieldError::new(
                    format!("destinations[{i}]"),
                    format!("unknown destination {id}"),
                ));
            } else if !chosen.contains(id) {
                chosen.push(id.clone());
            }
        }
        return if errors.is_empty() {
            Ok(chosen)
        } else {
            Err(errors)
        };
    }
    let matched: Vec<DestinationId> = routes
        .iter()
        .filter(|r| r.enabled && r.filter.matches(event_type))
        .map(|r| r.id.clone())
        .collect();
    if !matched.is_empty() {
        return Ok(matched);
    }
    Ok(routes
        .iter()
        .filter(|r| r.enabled && r.is_default)
        .map(|r| r.id.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: &str, types: &[&str], default: bool, enabled: bool) -> Route {
        Route {
            id: DestinationId::parse(id).unwrap(),
            enabled,
            is_default: default,
            filter: Filter {
                event_types: types.iter().map(|s| s.to_string()).collect(),
            },
            max_attempts: 6,
        }
    }

    #[test]
    fn listed_then_filters_then_defaults() {
        let routes = vec![
            route("dst_a", &["order.*"], false, true),
            route("dst_b", &[], true, true),
            route("dst_c", &["order.created"], false, false),
        ];
        let ids = |v: Vec<DestinationId>| v.into_iter().map(|d| d.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ids(resolve(&routes, "order.created", None).unwrap()),
            ["dst_a"]
        );
        assert_eq!(
            ids(resolve(&routes, "user.created", None).unwrap()),
            ["dst_b"]
        );
        let listed = [
            DestinationId::parse("dst_c").unwrap(),
            DestinationId::parse("dst_c").unwrap(),
        ];
        assert_eq!(
            ids(resolve(&routes, "x", Some(&listed)).unwrap()),
            ["dst_c"]
        );
        let unknown = [DestinationId::parse("dst_zzz").unwrap()];
        assert_eq!(
            resolve(&routes, "x", Some(&unknown)).unwrap_err()[0].field,
            "destinations[0]"
        );
        assert!(
            resolve(&[route("dst_a", &["a"], false, true)], "b", None)
                .unwrap()
                .is_empty()
        );
    }
}
