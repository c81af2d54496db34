//! The OpenTelemetry pipeline behind [`super::Traces`]: a batch span
//! processor (bounded: past its queue, spans are dropped and counted, never
//! waited for) and an OTLP exporter over HTTP/protobuf or gRPC.
//!
//! The batch processor exports from a thread of its own, but both OTLP
//! clients need a tokio runtime to do I/O, so every export is handed to
//! Ferry's runtime ([`OnRuntime`]) and the thread waits for its result.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    BatchConfig, BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData,
    SpanExporter,
};

use super::settings::{Protocol, Root, Sampling, Settings};

/// Spans waiting for export, at most. The SDK's default (2,048) is a
/// fraction of a second of Ferry's traffic.
const MAX_QUEUE: usize = 65_536;

/// Builds the provider for `settings`; must run inside the tokio runtime
/// that will carry the exports.
pub(super) fn provider(settings: &Settings) -> Result<SdkTracerProvider, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "traces need a tokio runtime".to_owned())?;
    let timeout = Duration::from_secs(10);
    let exporter = match settings.protocol {
        Protocol::HttpProtobuf => {
            let headers: HashMap<String, String> = settings
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(&settings.endpoint)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(timeout)
                .with_headers(headers)
                .build()
        }
        Protocol::Grpc => {
            let mut headers = axum::http::HeaderMap::new();
            for (key, value) in &settings.headers {
                let name = axum::http::HeaderName::from_bytes(key.as_bytes())
                    .map_err(|_| format!("OTLP header name {key:?} is not valid"))?;
                let value = axum::http::HeaderValue::from_str(value)
                    .map_err(|_| format!("OTLP header {key} has a value gRPC cannot carry"))?;
                headers.insert(name, value);
            }
            let metadata =
                opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&settings.endpoint)
                .with_timeout(timeout)
                .with_metadata(metadata)
                .build()
        }
    }
    .map_err(|error| format!("the OTLP exporter cannot be built: {error}"))?;
    let processor = BatchSpanProcessor::builder(OnRuntime {
        inner: Arc::new(exporter),
        runtime,
    })
    .with_batch_config(batch_config())
    .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sampler(settings.sampling))
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build())
}

/// The SDK's batch settings (which read the `OTEL_BSP_*` variables), with
/// Ferry's defaults where a variable is not set: a larger queue, and spans
/// sent every second rather than every five, so that an operator following
/// a delivery sees it at once.
fn batch_config() -> BatchConfig {
    let set = |name: &str| std::env::var_os(name).is_some();
    let mut builder = BatchConfigBuilder::default();
    if !set("OTEL_BSP_MAX_QUEUE_SIZE") {
        builder = builder.with_max_queue_size(MAX_QUEUE);
    }
    if !set("OTEL_BSP_SCHEDULE_DELAY") {
        builder = builder.with_scheduled_delay(Duration::from_secs(1));
    }
    builder.build()
}

fn sampler(sampling: Sampling) -> Sampler {
    let root = |r: Root| match r {
        Root::AlwaysOn => Sampler::AlwaysOn,
        Root::AlwaysOff => Sampler::AlwaysOff,
        Root::Ratio(x) => Sampler::TraceIdRatioBased(x),
    };
    match sampling {
        Sampling::AlwaysOn => Sampler::AlwaysOn,
        Sampling::AlwaysOff => Sampler::AlwaysOff,
        Sampling::Ratio(x) => Sampler::TraceIdRatioBased(x),
        Sampling::ParentBased(r) => Sampler::ParentBased(Box::new(root(r))),
    }
}

/// An exporter whose exports run on a tokio runtime, whichever thread asks.
struct OnRuntime<E> {
    inner: Arc<E>,
    runtime: tokio::runtime::Handle,
}

impl<E> fmt::Debug for OnRuntime<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnRuntime")
    }
}

impl<E: SpanExporter + 'static> SpanExporter for OnRuntime<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let inner = self.inner.clone();
        let task = self.runtime.spawn(async move { inner.export(batch).await });
        async move {
            task.await
                .unwrap_or_else(|error| Err(OTelSdkError::InternalFailure(error.to_string())))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called while the provider is built, before any export holds a
        // second reference.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}
