//! Traces through the real queue: with an OpenTelemetry layer installed (here the SDK with an
//! in-memory exporter; the app's test receives the real OTLP export), the caller's span, the
//! enqueue, each attempt, and the jobs an attempt or a flow enqueues are one trace whose spans
//! chain by their parent ids. Without a trace, a job stores no `trace` field.
//!
//! `cargo test -p eventmill-jobs --test traces` (EVENTMILL_REDIS_URL: `scripts/services.sh env`).

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use eventmill_jobs::{
    EnqueueOptions, Job, JobContext, JobError, JobState, Jobs, JobsSettings, Processor, QueueSpec, Queues, Registry,
    queue::Planned, shutdown::Shutdown,
};
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{SdkTracerProvider, SpanData, SpanExporter},
};
use serde_json::{Value, json};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const QUEUE: &str = "traced";

/// What the processors reach: the queues, to enqueue a child job from inside an attempt.
struct State {
    queues: Queues,
}

/// A job that enqueues one `Leaf` while it runs.
struct Branch;

impl Processor<State> for Branch {
    type Payload = serde_json::Map<String, Value>;
    const NAME: &'static str = "BRANCH";
    const QUEUE: &'static str = QUEUE;

    async fn process(&self, ctx: &JobContext<State>, _: Self::Payload) -> Result<Value, JobError> {
        let leaf = Job { kind: Leaf::NAME, payload: json!({ "from": "branch" }) };
        let enqueued =
            ctx.state().queues.enqueue(&leaf, EnqueueOptions::default()).await.map_err(JobError::retryable)?;
        Ok(json!({ "leaf": enqueued.id }))
    }
}

/// A job that does nothing.
struct Leaf;

impl Processor<State> for Leaf {
    type Payload = serde_json::Map<String, Value>;
    const NAME: &'static str = "LEAF";
    const QUEUE: &'static str = QUEUE;

    async fn process(&self, _: &JobContext<State>, _: Self::Payload) -> Result<Value, JobError> {
        Ok(json!({ "ok": true }))
    }
}

/// Every finished span of this test binary (the exporter runs as each span ends).
#[derive(Debug, Clone, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

/// Installs the OpenTelemetry layer once for the binary; answers the collected spans.
fn collected() -> &'static Collected {
    static COLLECTED: OnceLock<Collected> = OnceLock::new();
    COLLECTED.get_or_init(|| {
        let collected = Collected::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(collected.clone()).build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("eventmill-jobs-test"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();
        collected
    })
}

/// The framework on a fresh key prefix, its workers running.
fn start() -> (Jobs<State>, Shutdown, tokio::task::JoinSet<anyhow::Result<()>>) {
    let registry = Registry::new().queue(QueueSpec::new(QUEUE).concurrency(4)).register(Branch).register(Leaf);
    let values = [
        (
            "EVENTMILL_REDIS_URL",
            std::env::var("EVENTMILL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        ),
        ("EVENTMILL_REDIS_PREFIX", format!("emjobs-traces:{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)),
        ("EVENTMILL_JOB_IDLE_CHECK_MS", "200".into()),
    ];
    let get = |k: &str| values.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let settings =
        JobsSettings::from_lookup("EVENTMILL", &registry.kind_names(), &registry.queue_names(), get).unwrap();
    let jobs = Jobs::connect(settings, registry).unwrap();
    let shutdown = Shutdown::new();
    let state = Arc::new(State { queues: jobs.queues().clone() });
    let mut workers = tokio::task::JoinSet::new();
    jobs.spawn_workers(jobs.dispatch(state), &mut workers, &shutdown).unwrap();
    (jobs, shutdown, workers)
}

/// The OpenTelemetry span context of `span` (started by asking).
fn context_of(span: &tracing::Span) -> opentelemetry::trace::SpanContext {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    span.context().span().span_context().clone()
}

/// One span of a trace, as the checks read it.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    id: SpanId,
    parent: SpanId,
    kind: String,
}

/// The spans of trace `trace` once `count` of them ended (panics after 10 s).
async fn spans_of(trace: TraceId, count: usize) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spans: Vec<Seen> = collected()
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .map(|s| Seen {
                name: s.name.to_string(),
                id: s.span_context.span_id(),
                parent: s.parent_span_id,
                kind: s
                    .attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == "kind")
                    .map(|kv| kv.value.as_str().into_owned())
                    .unwrap_or_default(),
            })
            .collect();
        if spans.len() >= count || Instant::now() > deadline {
            assert!(spans.len() >= count, "trace {trace} has {} spans, expected {count}: {spans:#?}", spans.len());
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one span named `name` of `kind` whose parent is `parent` (panics naming what was there).
fn child_of<'a>(spans: &'a [Seen], parent: SpanId, name: &str, kind: &str) -> Vec<&'a Seen> {
    let found: Vec<&Seen> = spans.iter().filter(|s| s.parent == parent && s.name == name && s.kind == kind).collect();
    assert!(!found.is_empty(), "no {name} span of {kind} under span {parent}: {spans:#?}");
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_the_enqueue_each_attempt_and_a_job_enqueued_by_an_attempt_are_one_trace() {
    collected();
    let (jobs, shutdown, _workers) = start();
    let root = tracing::info_span!("request");
    let root_context = context_of(&root);
    let enqueued = jobs.enqueue::<Branch>(&serde_json::Map::new()).instrument(root.clone()).await.unwrap();
    drop(root);
    let record = jobs.queues().job(&enqueued.id).await.unwrap().unwrap();
    let stored = record.trace.expect("a job enqueued under a trace keeps its context");
    assert!(stored.starts_with(&format!("00-{}-", root_context.trace_id())), "{stored}");

    // request -> enqueue(BRANCH) -> job(BRANCH) -> enqueue(LEAF) -> job(LEAF)
    let spans = spans_of(root_context.trace_id(), 5).await;
    let enqueue = child_of(&spans, root_context.span_id(), "enqueue", "BRANCH")[0];
    assert!(stored.contains(&enqueue.id.to_string()), "the job keeps its enqueue span's context: {stored}");
    let attempt = child_of(&spans, enqueue.id, "job", "BRANCH")[0];
    let leaf_enqueue = child_of(&spans, attempt.id, "enqueue", "LEAF")[0];
    child_of(&spans, leaf_enqueue.id, "job", "LEAF");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_s_children_are_enqueued_under_its_parent_s_enqueue_and_each_attempt_continues_its_own() {
    collected();
    let (jobs, shutdown, _workers) = start();
    let root = tracing::info_span!("request");
    let root_context = context_of(&root);
    let (trace_id, root_id) = (root_context.trace_id(), root_context.span_id());
    let parent = Job { kind: Leaf::NAME, payload: json!({ "role": "parent" }) };
    let children: Vec<Job> = (0..2).map(|i| Job { kind: Leaf::NAME, payload: json!({ "child": i }) }).collect();
    let planned: Vec<Planned<'_>> =
        children.iter().map(|job| Planned { job, options: EnqueueOptions::default() }).collect();
    let flow = jobs
        .queues()
        .enqueue_flow(Planned { job: &parent, options: EnqueueOptions::default() }, &planned)
        .instrument(root.clone())
        .await
        .unwrap();
    drop(root);

    // request -> enqueue(parent) -> { enqueue(child) -> job(child) } x 2, and -> job(parent)
    let spans = spans_of(trace_id, 1 + 1 + 2 + 2 + 1).await;
    let flow_enqueue = child_of(&spans, root_id, "enqueue", "LEAF")[0];
    let child_enqueues = child_of(&spans, flow_enqueue.id, "enqueue", "LEAF");
    assert_eq!(child_enqueues.len(), 2, "one enqueue span per child: {spans:#?}");
    for child in child_enqueues {
        assert_eq!(child_of(&spans, child.id, "job", "LEAF").len(), 1);
    }
    assert_eq!(child_of(&spans, flow_enqueue.id, "job", "LEAF").len(), 1, "the parent's attempt");
    let parent = jobs.queues().job(&flow.id).await.unwrap().unwrap();
    assert!(parent.trace.is_some() && matches!(parent.state, JobState::Active | JobState::Completed), "{parent:?}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_enqueued_outside_any_trace_stores_no_trace_field() {
    collected();
    let (jobs, shutdown, _workers) = start();
    let enqueued = jobs.enqueue::<Leaf>(&serde_json::Map::new()).await.unwrap();
    let key = format!("{}job:{}", eventmill_jobs::queue::key_base(&jobs.settings().redis.prefix), enqueued.id);
    let fields: Vec<String> = redis::cmd("HKEYS").arg(&key).query_async(&mut jobs.redis().clone()).await.unwrap();
    assert!(!fields.is_empty(), "the job hash {key} exists");
    assert!(!fields.iter().any(|f| f == "trace"), "no trace field without a trace: {fields:?}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_enqueue_is_one_span_whose_context_every_job_of_the_batch_continues() {
    collected();
    let (jobs, shutdown, _workers) = start();
    let root = tracing::info_span!("request");
    let root_context = context_of(&root);
    let batch = [serde_json::Map::new(), serde_json::Map::new()];
    let enqueued = jobs.enqueue_bulk::<Leaf>(&batch).instrument(root.clone()).await.unwrap();
    drop(root);
    let first = jobs.queues().job(&enqueued[0].id).await.unwrap().unwrap().trace;
    let second = jobs.queues().job(&enqueued[1].id).await.unwrap().unwrap().trace;
    assert!(first.is_some() && first == second, "both jobs keep the batch's context: {first:?} {second:?}");

    // request -> enqueue (the batch) -> job x 2
    let spans = spans_of(root_context.trace_id(), 1 + 1 + 2).await;
    let enqueue = child_of(&spans, root_context.span_id(), "enqueue", "")[0];
    assert_eq!(child_of(&spans, enqueue.id, "job", "LEAF").len(), 2, "{spans:#?}");
    shutdown.cancel();
}
