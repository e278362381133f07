//! Traces from an HTTP request to a job attempt, received as the real OTLP/HTTP export: the
//! `eventmill run` binary with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a receiver in this test
//! (an axum route decoding `ExportTraceServiceRequest` with prost). A request with a `traceparent`
//! enqueues a job through the board's API, the job runs, and the spans chain:
//! caller -> `http` -> `enqueue` -> `job` (the attempt), one trace id. An ingest request's
//! `traceparent` goes into the stream entry and the consumer's `stream entry` span continues it.
//! The process is stopped with SIGTERM: the last batch is flushed on shutdown.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::{
    fleet::{self, TOKEN},
    helpers::{TestEnv, eventually},
};

/// One received span: its name, trace id, id and parent id (hex).
#[derive(Debug, Clone)]
struct Received {
    name: String,
    trace: String,
    id: String,
    parent: String,
}

type Spans = Arc<Mutex<Vec<Received>>>;

async fn receive(State(spans): State<Spans>, body: Bytes) -> &'static [u8] {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut spans = spans.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    name: span.name,
                    trace: hex(&span.trace_id),
                    id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse.
    b""
}

/// A receiver on a free port; answers its base URL and what it received.
async fn otlp_receiver() -> (String, Spans) {
    let spans = Spans::default();
    let app = Router::new().route("/v1/traces", post(receive)).with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

/// The one span named `name` in `trace` whose parent is `parent` (panics listing the trace).
fn child(spans: &[Received], trace: &str, parent: &str, name: &str) -> Received {
    let found = spans.iter().find(|s| s.trace == trace && s.parent == parent && s.name == name);
    let of_trace: Vec<&Received> = spans.iter().filter(|s| s.trace == trace).collect();
    found.unwrap_or_else(|| panic!("no {name} span under {parent} in trace {trace}: {of_trace:#?}")).clone()
}

#[tokio::test]
async fn a_traced_request_its_enqueue_and_the_job_attempt_are_one_trace_in_the_otlp_export() {
    let env = TestEnv::new().await;
    let (endpoint, spans) = otlp_receiver().await;
    let mut run = fleet::start(&env, "run", &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    let client = reqwest::Client::new();

    let (trace, caller) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let job = "job_type = \"DAILY_ROLLUP\"\ndate = \"2026-03-01\"";
    let enqueued: serde_json::Value = client
        .post(run.url("/admin/api/enqueue"))
        .bearer_auth(TOKEN)
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .json(&serde_json::json!({ "job": job }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = enqueued["id"].as_str().unwrap_or_else(|| panic!("enqueued: {enqueued}")).to_owned();
    let job_url = run.url(&format!("/admin/api/jobs/{id}"));
    let completed = eventually(Duration::from_secs(30), || async {
        let job: serde_json::Value =
            client.get(&job_url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
        job["state"] == "completed"
    })
    .await;
    assert!(completed, "job {id} completed");
    let job: serde_json::Value = client.get(&job_url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    let stored = job["trace"].as_str().unwrap_or_else(|| panic!("the job API shows its trace: {job}"));
    assert!(stored.starts_with(&format!("00-{trace}-")), "{stored}");
    let page = client.get(run.url(&format!("/admin/jobs/{id}"))).bearer_auth(TOKEN).send().await.unwrap();
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("id=\"job-trace\" title=\"W3C traceparent of its enqueue\">{stored}<"))
    );

    let ingest_trace = "0af7651916cd43dd8448eb211c80319c";
    let response = client
        .post(run.url("/v1/events"))
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{ingest_trace}-b7ad6b7169203331-01"))
        .body(r#"{"event_type":"page_view","user_id":"u1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let stored = eventually(Duration::from_secs(20), || async { env.count_events().await == 1 }).await;
    assert!(stored, "the event was stored");

    // SIGTERM: a clean stop flushes the exporter's last batch.
    let pid = run.pid().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let stopped = tokio::time::timeout(Duration::from_secs(20), run.child.wait()).await;
    assert!(stopped.is_ok_and(|status| status.is_ok()), "eventmill run stopped on SIGTERM");

    let spans = spans.lock().unwrap().clone();
    assert!(!spans.iter().any(|s| s.name == "consume_once"), "the consumer's idle loop is not exported");
    let http = child(&spans, trace, caller, "http");
    let enqueue = child(&spans, trace, &http.id, "enqueue");
    child(&spans, trace, &enqueue.id, "job");

    let http = child(&spans, ingest_trace, "b7ad6b7169203331", "http");
    let appended: Vec<&Received> =
        spans.iter().filter(|s| s.trace == ingest_trace && s.name == "stream entry").collect();
    assert_eq!(appended.len(), 1, "one stream entry span: {spans:#?}");
    let mut parent = appended[0].parent.clone();
    // The entry's parent is the span that appended it (the producer's, under the request's).
    while parent != http.id {
        let up = spans.iter().find(|s| s.id == parent).unwrap_or_else(|| panic!("span {parent} not exported"));
        parent = up.parent.clone();
    }
}
