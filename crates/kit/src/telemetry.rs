//! Logs: human-readable text, or JSON lines in the shape Cloud Logging reads
//! (`severity`, `message`, `logging.googleapis.com/trace`), with the request's
//! trace taken from `traceparent` or `X-Cloud-Trace-Context`. Traces: when
//! `otel.endpoint` is set, the `tracing` spans (one per request, children for
//! store operations and embedding calls) are exported over OTLP/HTTP, joined to
//! the caller's trace through `traceparent`.

use std::fmt;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use serde::{Deserialize, Serialize};

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `memory_server=debug`.
    pub level: String,
    /// JSON lines for Cloud Logging (`true`) or human-readable text.
    pub json: bool,
    /// Google Cloud project id: traces are logged as `projects/<id>/traces/<trace>`,
    /// the form Cloud Logging links to Cloud Trace (raw trace id when empty).
    pub gcp_project: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            json: false,
            gcp_project: String::new(),
        }
    }
}

/// OpenTelemetry trace export over OTLP/HTTP (protobuf).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtelConfig {
    /// Collector base URL, e.g. `http://127.0.0.1:4318` (spans go to
    /// `<endpoint>/v1/traces`); empty turns export off.
    pub endpoint: String,
    /// `service.name` of the exported resource (empty: the service's own name).
    pub service_name: String,
    /// Share of new traces sampled (0.0 to 1.0); a sampled parent is always followed.
    pub sample_ratio: f64,
    /// Longest wait for one export, in milliseconds.
    pub export_timeout_ms: u64,
}

impl Default for OtelConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            service_name: String::new(),
            sample_ratio: 1.0,
            export_timeout_ms: 10_000,
        }
    }
}

/// Flushes exported traces when the server stops.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    service: &'static str,
}

impl Telemetry {
    /// Exports the spans still buffered and stops exporting. Call it outside
    /// the async runtime: the exporter's HTTP client blocks.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("{}: trace export did not flush: {e}", self.service);
        }
    }
}

/// The OTLP trace pipeline `config` asks for, if any.
fn tracer_provider(config: &OtelConfig, name: &str) -> Result<Option<SdkTracerProvider>, String> {
    if config.endpoint.is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!(
            "{}/v1/traces",
            config.endpoint.trim_end_matches('/')
        ))
        .with_timeout(std::time::Duration::from_millis(config.export_timeout_ms))
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)));
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(
                Resource::builder()
                    .with_service_name(name.to_owned())
                    .build(),
            )
            .build(),
    ))
}

/// Which service is logging: its name (the default `service.name` of
/// exported traces) and its crate, whose spans are exported.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// e.g. `memory-server`.
    pub name: &'static str,
    /// The crate's `tracing` target, e.g. `memory_server`.
    pub target: &'static str,
}

/// Installs the global subscriber (stderr) and, when configured, trace export.
/// Call it before starting the async runtime; a second call installs nothing.
pub fn init(config: &LogConfig, otel: &OtelConfig, service: Service) -> Result<Telemetry, String> {
    let name = if otel.service_name.is_empty() {
        service.name.to_owned()
    } else {
        otel.service_name.clone()
    };
    let provider = tracer_provider(otel, &name)?;
    // Exported spans are the service's and the kit's (the request span),
    // whatever the log level says.
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(name.clone()))
            .with_filter(
                Targets::new()
                    .with_target(service.target, Level::INFO)
                    .with_target(env!("CARGO_CRATE_NAME"), Level::INFO),
            )
    });
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(otel_layer);
    let result = if config.json {
        registry
            .with(SpanFields)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .event_format(CloudJson {
                        project: (!config.gcp_project.is_empty())
                            .then(|| config.gcp_project.clone()),
                    })
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .fmt_fields(TextFields)
                    .with_filter(filter),
            )
            .try_init()
    };
    let _ = result;
    Ok(Telemetry {
        provider,
        service: service.name,
    })
}

/// Reads W3C trace context from request headers.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The trace id of a request: W3C `traceparent`, else Google's `X-Cloud-Trace-Context`.
pub fn trace_id(headers: &HeaderMap) -> Option<String> {
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        let mut parts = tp.split('-');
        let (_version, id) = (parts.next(), parts.next());
        if let Some(id) =
            id.filter(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Some(id.to_ascii_lowercase());
        }
    }
    let cloud = headers.get("x-cloud-trace-context")?.to_str().ok()?;
    let id = cloud.split('/').next()?;
    (!id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| id.to_ascii_lowercase())
}

/// A duration in milliseconds, rounded to the microsecond (no float noise
/// such as `0.5226080000000001` in responses and logs).
pub fn millis_rounded(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Whether a span field is for trace export only (`otel.*`, `http.*`): the
/// exporter reads them, log lines leave them out (they repeat method, path
/// and status).
fn export_only(field: &str) -> bool {
    field.starts_with("otel.") || field.starts_with("http.")
}

/// Middleware: one span per request carrying its trace, and one log line when it ends.
pub async fn request_span(req: Request, next: Next) -> Response {
    // Absent (not empty) when the caller sent no trace header.
    let trace = trace_id(req.headers());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        trace = trace.as_deref(),
        otel.name = %format!("{} {route}", req.method()),
        otel.kind = "server",
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    // The exported span continues the caller's trace.
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
    let _ = span.set_parent(parent);
    let started = std::time::Instant::now();
    let response = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = millis_rounded(started.elapsed()),
            "request finished"
        );
    });
    response
}

/// Collects an event's or span's fields as JSON, leaving out export-only ones.
#[derive(Default)]
struct JsonFields(Map<String, Value>);

impl JsonFields {
    fn put(&mut self, field: &Field, value: Value) {
        if !export_only(field.name()) {
            self.0.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
}

/// Text log fields as `name=value`, space-separated, without export-only ones.
struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut visit = TextVisit {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visit);
        visit.result
    }
}

/// Writes one text log line's fields; the message goes bare, as tracing's own format does.
struct TextVisit<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for TextVisit<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() || export_only(field.name()) {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{value:?}")
        } else {
            write!(self.writer, "{separator}{}={value:?}", field.name())
        };
    }
}

/// Keeps each span's fields as JSON so events inside it can carry them.
struct SpanFields;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanFields {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = JsonFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }
}

/// Formats events as Cloud Logging structured JSON.
struct CloudJson {
    /// The project that qualifies trace ids.
    project: Option<String>,
}

impl CloudJson {
    /// The value of `logging.googleapis.com/trace` for a trace id.
    fn trace_field(&self, trace: &str) -> String {
        match &self.project {
            Some(p) => format!("projects/{p}/traces/{trace}"),
            None => trace.to_owned(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for CloudJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut out = Map::new();
        // Span fields first (outermost first), so the event's own fields win.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<JsonFields>() {
                    for (k, v) in &f.0 {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        out.extend(fields.0);
        let severity = match *event.metadata().level() {
            tracing::Level::ERROR => "ERROR",
            tracing::Level::WARN => "WARNING",
            tracing::Level::INFO => "INFO",
            _ => "DEBUG",
        };
        out.insert("severity".into(), Value::from(severity));
        if !out.contains_key("message") {
            out.insert("message".into(), Value::from(""));
        }
        if let Some(Value::String(t)) = out.remove("trace")
            && !t.is_empty()
        {
            out.insert(
                "logging.googleapis.com/trace".into(),
                Value::String(self.trace_field(&t)),
            );
        }
        out.insert("target".into(), Value::from(event.metadata().target()));
        if let Ok(now) =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)
        {
            out.insert("time".into(), Value::from(now));
        }
        let line = serde_json::to_string(&out).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(trace_id(&h), None);
        h.insert(
            "x-cloud-trace-context",
            "105445AA7843BC8BF206B12000100000/1;o=1".parse().unwrap(),
        );
        assert_eq!(
            trace_id(&h).as_deref(),
            Some("105445aa7843bc8bf206b12000100000")
        );
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            trace_id(&h).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let f = CloudJson {
            project: Some("my-proj".into()),
        };
        assert_eq!(f.trace_field("abc"), "projects/my-proj/traces/abc");
        assert_eq!(CloudJson { project: None }.trace_field("abc"), "abc");
        h.insert("traceparent", "garbage".parse().unwrap());
        assert_eq!(
            trace_id(&h).as_deref(),
            Some("105445aa7843bc8bf206b12000100000")
        );
    }
}
