//! Ferry's traces: spans for ingest (through its group commit), for every
//! delivery attempt and for the dispatcher's batches, exported with
//! OpenTelemetry (OTLP) when an endpoint is configured.
//!
//! The span of an attempt is a child of its event's stored trace context,
//! not of anything in memory: an attempt made after a restart, or by
//! another worker process, joins the producer's trace all the same.
//!
//! With no endpoint, [`Traces`] is off: no span is built, no id drawn, no
//! attribute formatted — the hot paths pay one branch.

mod export;
pub mod settings;

use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use ferry_core::trace::TraceContext;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::warn;

pub use settings::TelemetryConfig;

/// Links a span keeps at most (the OpenTelemetry default limit).
const MAX_LINKS: usize = 128;

/// The trace pipeline, or nothing when traces are off. Cheap to clone.
#[derive(Clone, Default)]
pub struct Traces(Option<Arc<Pipeline>>);

struct Pipeline {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Pipeline {
    fn start(
        &self,
        name: &'static str,
        kind: SpanKind,
        parent: &Context,
        links: Vec<Link>,
        start: Option<SystemTime>,
        attributes: impl IntoIterator<Item = KeyValue>,
    ) -> Traced {
        let mut builder = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_links(links)
            .with_attributes(attributes);
        if let Some(start) = start {
            builder = builder.with_start_time(start);
        }
        Traced(Some(Box::new(
            builder.start_with_context(&self.tracer, parent),
        )))
    }
}

impl Drop for Pipeline {
    /// The provider's last reference shuts it down, which waits for the
    /// final export — an export that runs on the tokio runtime. Dropped on
    /// a runtime thread (an engine dropped without `stop`), that wait would
    /// hold the very thread the export needs, until its timeout. The wait
    /// happens on a thread of its own instead.
    fn drop(&mut self) {
        let provider = self.provider.clone();
        let _ = std::thread::Builder::new()
            .name("ferry-traces-shutdown".into())
            .spawn(move || {
                let _ = provider.shutdown();
            });
    }
}

impl Traces {
    /// Traces off.
    pub fn off() -> Self {
        Traces(None)
    }

    /// The pipeline `config` and the process's `OTEL_*` variables ask for;
    /// off when neither names an endpoint. Must run inside the runtime the
    /// exports will use.
    pub fn start(config: &TelemetryConfig) -> Result<Self, String> {
        let Some(settings) = config.resolve(|name| std::env::var(name).ok())? else {
            return Ok(Traces::off());
        };
        let provider = export::provider(&settings)?;
        let tracer = provider.tracer("ferry");
        tracing::info!(endpoint = %settings.endpoint, protocol = ?settings.protocol, "Exporting traces with OTLP.");
        Ok(Traces(Some(Arc::new(Pipeline { provider, tracer }))))
    }

    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Starts a span, a child of `parent` when given (a producer's context
    /// or an event's stored one), else the root of a new trace. Inert when
    /// traces are off; `attributes` is called only when they are on.
    pub fn span<A>(
        &self,
        name: &'static str,
        kind: SpanKind,
        parent: Option<&TraceContext>,
        attributes: impl FnOnce() -> A,
    ) -> Traced
    where
        A: IntoIterator<Item = KeyValue>,
    {
        let Some(pipeline) = &self.0 else {
            return Traced(None);
        };
        let cx = parent.map_or_else(Context::new, |p| {
            Context::new().with_remote_span_context(span_context(p))
        });
        pipeline.start(name, kind, &cx, Vec::new(), None, attributes())
    }

    /// Starts a root span linked to the spans of `linked` (a batch that
    /// serves many traces: a group commit, a lease).
    pub fn batch_span<'a, A>(
        &self,
        name: &'static str,
        linked: impl IntoIterator<Item = &'a TraceContext>,
        attributes: impl FnOnce() -> A,
    ) -> Traced
    where
        A: IntoIterator<Item = KeyValue>,
    {
        self.batch_span_from(name, None, linked, attributes)
    }

    /// Like `batch_span`, for work that began at `start` and is already
    /// known to be worth a span (a poll that leased something; an empty
    /// poll every second would only be noise).
    pub fn batch_span_from<'a, A>(
        &self,
        name: &'static str,
        start: Option<SystemTime>,
        linked: impl IntoIterator<Item = &'a TraceContext>,
        attributes: impl FnOnce() -> A,
    ) -> Traced
    where
        A: IntoIterator<Item = KeyValue>,
    {
        let Some(pipeline) = &self.0 else {
            return Traced(None);
        };
        let links: Vec<Link> = linked
            .into_iter()
            .take(MAX_LINKS)
            .map(|t| Link::with_context(span_context(t)))
            .collect();
        pipeline.start(
            name,
            SpanKind::Internal,
            &Context::new(),
            links,
            start,
            attributes(),
        )
    }

    /// Exports what is buffered and stops; called once at shutdown.
    pub async fn shutdown(&self) {
        let Some(pipeline) = self.0.clone() else {
            return;
        };
        // Blocking: the exports it waits for run on this runtime.
        let done = tokio::task::spawn_blocking(move || pipeline.provider.shutdown()).await;
        if let Ok(Err(error)) = done {
            warn!(%error, "Exporting the last traces failed.");
        }
    }
}

/// A started span, or nothing when traces are off. Ends when dropped.
pub struct Traced(Option<Box<opentelemetry_sdk::trace::Span>>);

impl Traced {
    /// This span as the parent of the next hop (stored with an event, sent
    /// in `traceparent`), with the `tracestate` it inherited.
    pub fn context(&self) -> Option<TraceContext> {
        let span = self.0.as_ref()?;
        let sc = span.span_context();
        if !sc.is_valid() {
            return None;
        }
        let state = sc.trace_state().header();
        TraceContext::new(
            sc.trace_id().to_bytes(),
            sc.span_id().to_bytes(),
            sc.trace_flags().to_u8(),
            (!state.is_empty()).then_some(state),
        )
    }

    /// Adds attributes; `attributes` is called only for a live span.
    pub fn record<A>(&mut self, attributes: impl FnOnce() -> A)
    where
        A: IntoIterator<Item = KeyValue>,
    {
        if let Some(span) = &mut self.0
            && span.is_recording()
        {
            span.set_attributes(attributes());
        }
    }

    /// Marks the span as failed, with a reason for operators.
    pub fn fail(&mut self, reason: impl FnOnce() -> String) {
        if let Some(span) = &mut self.0
            && span.is_recording()
        {
            span.set_status(Status::error(reason()));
        }
    }
}

/// The OpenTelemetry form of a stored context (remote: it came from
/// outside this process, or from storage).
fn span_context(t: &TraceContext) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(t.trace_id()),
        SpanId::from_bytes(t.parent_id()),
        TraceFlags::new(t.flags()),
        true,
        t.tracestate()
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default(),
    )
}
