//! OpenTelemetry export: the real server sends its spans over OTLP/HTTP
//! (protobuf) to a loopback collector stub, continuing the caller's
//! `traceparent`, with store and embedding spans as children of the request.

use std::sync::Arc;

use crate::support::{Server, config_toml, free_port, serve_stub};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use parking_lot::Mutex;
use prost::Message;
use serde_json::json;

/// Spans received, with their resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn traces(State(got): State<Received>, body: Bytes) -> impl IntoResponse {
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    for rs in request.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref()?.value.clone())
            .map(|v| match v {
                AnyValue::StringValue(s) => s,
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for span in ss.spans {
                got.lock().push((service.clone(), span));
            }
        }
    }
    (
        [(CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn int_attribute(span: &Span, key: &str) -> Option<i64> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::IntValue(i) => Some(*i),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_inside_the_callers_trace() {
    let got: Received = Arc::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(Arc::clone(&got));
    let collector = serve_stub(app).await;

    let dir = tempfile::tempdir().unwrap();
    let otel = format!("[otel]\nendpoint = \"{collector}\"\nservice_name = \"memory-test\"\n");
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &otel),
    );
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .post(format!("{}/v1/memories", server.url))
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .json(&json!({"namespace": "otel", "text": "traces go to the collector"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // Stopping flushes the batch.
    assert!(server.terminate().success());

    let spans = got.lock().clone();
    let (service, request) = spans
        .iter()
        .find(|(_, s)| s.name == "POST /v1/memories")
        .unwrap_or_else(|| {
            panic!(
                "no request span among {:?}",
                spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(service, "memory-test");
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(
        hex(&request.trace_id),
        trace,
        "continues the caller's trace"
    );
    assert_eq!(hex(&request.parent_span_id), caller_span);
    assert_eq!(
        int_attribute(request, "http.response.status_code"),
        Some(201),
        "{:?}",
        request.attributes
    );

    // Its children: the embedding call and the store operations.
    let children: Vec<&str> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.parent_span_id == request.span_id && s.trace_id == request.trace_id)
        .map(|s| s.name.as_str())
        .collect();
    assert!(children.contains(&"embed"), "{children:?}");
    assert!(
        children.iter().any(|n| n.starts_with("store ")),
        "{children:?}"
    );
}
