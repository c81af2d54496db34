//! What every handler is given: the use cases, the server's configuration
//! (body limit, public URL) and the metrics registry.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::app::App;
use crate::config::Config;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    app: App,
    config: Config,
    metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(app: App, config: Config, metrics: PrometheusHandle) -> Self {
        Self(Arc::new(Inner {
            app,
            config,
            metrics,
        }))
    }

    pub fn app(&self) -> &App {
        &self.0.app
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn metrics(&self) -> &PrometheusHandle {
        &self.0.metrics
    }
}
