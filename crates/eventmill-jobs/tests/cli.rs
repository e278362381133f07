//! The framework's CLI embedded in an application that is not eventmill (a shop with its own
//! state, queue and kinds): `enqueue KIND field=value` with flags before and after the kind,
//! `--wait` with its exit codes, usage errors, `jobs list|show|retry`, `schedules list|show|run|add|remove|pause|resume` and
//! `enqueue --help`, against a real Redis (`EVENTMILL_REDIS_URL`, else redis://127.0.0.1:6379)
//! under a random key prefix. No PostgreSQL.

use std::{path::Path, process::ExitCode, sync::Arc, time::Duration};

use clap::{CommandFactory, Parser, Subcommand};
use eventmill_jobs::{
    JobContext, JobError, JobRecord, JobState, Jobs, JobsSettings, Processor, QueueSpec, Registry,
    cli::{self, EnqueueArgs, JobsCommand, SchedulesCommand},
    shutdown::Shutdown,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The shop's own state: what its jobs read.
struct Shop {
    currency: &'static str,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Receipt {
    order_id: String,
    amount: u32,
}

/// SEND_RECEIPT: succeeds with the amount in the shop's currency.
struct SendReceipt;

impl Processor<Shop> for SendReceipt {
    type Payload = Receipt;
    const NAME: &'static str = "SEND_RECEIPT";
    const QUEUE: &'static str = "shop:mail";

    async fn process(&self, ctx: &JobContext<Shop>, job: Receipt) -> Result<Value, JobError> {
        ctx.progress(50, "sending");
        Ok(json!({ "sent": job.order_id, "total": format!("{} {}", job.amount, ctx.state().currency) }))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Refund {
    order_id: String,
}

/// REFUND: always fails for good (the payment provider says no).
struct Refunds;

impl Processor<Shop> for Refunds {
    type Payload = Refund;
    const NAME: &'static str = "REFUND";
    const QUEUE: &'static str = "shop:mail";

    async fn process(&self, _: &JobContext<Shop>, job: Refund) -> Result<Value, JobError> {
        Err(JobError::permanent(format!("order {} was never paid", job.order_id)))
    }
}

/// The shop's command line: one subcommand of its own beside the framework's.
#[derive(Debug, Parser)]
#[command(name = "shop")]
struct ShopCli {
    #[command(subcommand)]
    command: ShopCommand,
}

#[derive(Debug, Subcommand)]
enum ShopCommand {
    /// The shop's own subcommand.
    Open,
    /// Put a job on its queue.
    Enqueue(EnqueueArgs),
    /// Inspect, retry and remove jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The cron schedules.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
}

fn registry() -> Registry<Shop> {
    Registry::new().queue(QueueSpec::new("shop:mail").concurrency(2)).register(SendReceipt).register(Refunds)
}

/// The shop's jobs on the test Redis, under a fresh prefix.
fn connect() -> (Jobs<Shop>, String) {
    let url = std::env::var("EVENTMILL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("shop-cli-{:016x}", rand::random::<u64>());
    let registry = registry();
    let values =
        [("SHOP_REDIS_URL", url), ("SHOP_REDIS_PREFIX", prefix.clone()), ("SHOP_JOB_IDLE_CHECK_MS", "200".into())];
    let lookup = |key: &str| values.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    let settings = JobsSettings::from_lookup("SHOP", &registry.kind_names(), &registry.queue_names(), lookup).unwrap();
    (Jobs::connect(settings, registry).unwrap(), prefix)
}

/// Parses `args` as the shop's command line and runs the framework's subcommand.
async fn shop(jobs: &Jobs<Shop>, args: &[&str]) -> anyhow::Result<ExitCode> {
    let cli = ShopCli::try_parse_from(std::iter::once("shop").chain(args.iter().copied()))?;
    match cli.command {
        ShopCommand::Open => Ok(ExitCode::SUCCESS),
        ShopCommand::Enqueue(args) => args.run(jobs.queues()).await,
        ShopCommand::Jobs(command) => command.run(jobs.queues()).await,
        ShopCommand::Schedules(command) => {
            let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.toml", jobs.settings().redis.prefix));
            let schedules = "[[schedule]]\nname = \"receipts\"\ncron = \"0 3 * * *\"\n\
                             [schedule.job]\njob_type = \"SEND_RECEIPT\"\norder_id = \"nightly\"\namount = 1\n";
            std::fs::write(&file, schedules)?;
            let schedules = jobs.load_schedules(&file).map_err(anyhow::Error::msg)?;
            command.run(&jobs.scheduler(schedules)).await
        }
    }
}

async fn jobs_in(jobs: &Jobs<Shop>, state: JobState) -> Vec<JobRecord> {
    let queues = jobs.queues();
    queues.list(queues.named("shop:mail").unwrap(), state, 100).await.unwrap()
}

/// Deletes every key of the test's prefix.
async fn clean(jobs: &Jobs<Shop>, prefix: &str) {
    let mut redis = jobs.redis().clone();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("*{prefix}*")).query_async(&mut redis).await.unwrap();
    for key in keys {
        let _: () = redis::cmd("DEL").arg(&key).query_async(&mut redis).await.unwrap();
    }
}

#[tokio::test]
async fn an_app_that_is_not_eventmill_enqueues_lists_and_shows_its_own_kinds_through_the_framework_cli() {
    let (jobs, prefix) = connect();

    // `enqueue KIND field=value`, its flags before or after the kind.
    let enqueued = shop(&jobs, &["enqueue", "--priority", "3", "SEND_RECEIPT", "order_id=o-1", "amount=12"]).await;
    assert_eq!(enqueued.unwrap(), ExitCode::SUCCESS);
    let enqueued = shop(&jobs, &["enqueue", "SEND_RECEIPT", "order_id=\"0042\"", "amount=7", "--delay", "1h"]).await;
    assert_eq!(enqueued.unwrap(), ExitCode::SUCCESS);
    let waiting = jobs_in(&jobs, JobState::Waiting).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let first = &waiting[0];
    assert_eq!((first.kind.as_str(), first.priority, first.origin.as_str()), ("SEND_RECEIPT", 3, "cli"));
    assert_eq!(first.payload, json!({ "job_type": "SEND_RECEIPT", "order_id": "o-1", "amount": 12 }));
    let delayed = jobs_in(&jobs, JobState::Delayed).await;
    assert_eq!(delayed.len(), 1, "--delay after the kind: {delayed:?}");
    assert_eq!(delayed[0].payload["order_id"], "0042", "a JSON string value stays text");

    // Usage errors: exit code 2, nothing enqueued.
    for args in [
        &["enqueue", "SEND_RECIEPT", "order_id=o-2", "amount=1"][..],
        &["enqueue", "SEND_RECEIPT", "order_id=o-2"],
        &["enqueue", "SEND_RECEIPT", "order_id=o-2", "amount=1", "oops"],
        &["enqueue", "SEND_RECEIPT", "order_id=o-2", "amount=1", "--priority", "0"],
        &["enqueue"],
    ] {
        assert_eq!(shop(&jobs, args).await.unwrap(), ExitCode::from(2), "{args:?}");
    }
    assert_eq!(jobs_in(&jobs, JobState::Waiting).await.len() + jobs_in(&jobs, JobState::Delayed).await.len(), 2);

    // `jobs list` and `jobs show` of the shop's queue; an unknown id or queue is an error.
    for args in [
        &["jobs", "list", "--state", "waiting"][..],
        &["jobs", "list", "--queue", "shop:mail", "--state", "delayed", "--json"],
        &["jobs", "show", &first.id],
    ] {
        assert_eq!(shop(&jobs, args).await.unwrap(), ExitCode::SUCCESS, "{args:?}");
    }
    let unknown = shop(&jobs, &["jobs", "show", "no-such-job"]).await.unwrap_err().to_string();
    assert!(unknown.contains("no job with id no-such-job"), "{unknown}");
    let unknown = shop(&jobs, &["jobs", "list", "--queue", "analytics:rollup"]).await.unwrap_err().to_string();
    assert!(unknown.contains("unknown queue \"analytics:rollup\"") && unknown.contains("shop:mail"), "{unknown}");

    // With a worker: `--wait` ends 0 for a completed job and 1 for a failed one; `jobs retry`.
    let shutdown = Shutdown::new();
    let worker = tokio::spawn({
        let (jobs, shutdown) = (jobs.clone(), shutdown.clone());
        async move { jobs.run_workers(Arc::new(Shop { currency: "EUR" }), shutdown).await }
    });
    let waited = shop(&jobs, &["enqueue", "--wait", "SEND_RECEIPT", "order_id=o-3", "amount=5"]).await;
    assert_eq!(waited.unwrap(), ExitCode::SUCCESS);
    let completed = jobs_in(&jobs, JobState::Completed).await;
    let done = completed.iter().find(|j| j.payload["order_id"] == "o-3").expect("o-3 completed");
    assert_eq!(done.result, Some(json!({ "sent": "o-3", "total": "5 EUR" })), "the shop's state reached the job");
    let refused = shop(&jobs, &["enqueue", "REFUND", "order_id=o-4", "--wait"]).await;
    assert_eq!(refused.unwrap(), ExitCode::FAILURE, "a failed job exits 1");
    let failed = jobs_in(&jobs, JobState::Failed).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(shop(&jobs, &["jobs", "retry", "--all-failed"]).await.unwrap(), ExitCode::SUCCESS);
    let not_failed = shop(&jobs, &["jobs", "retry", &done.id]).await.unwrap_err().to_string();
    assert!(not_failed.contains("is completed, not failed"), "{not_failed}");

    // `schedules list` and `schedules run NAME --wait`, from the shop's own scheduler.toml.
    assert_eq!(shop(&jobs, &["schedules", "list"]).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(shop(&jobs, &["schedules", "run", "receipts", "--wait"]).await.unwrap(), ExitCode::SUCCESS);
    let completed = jobs_in(&jobs, JobState::Completed).await;
    assert!(completed.iter().any(|j| j.origin == "schedule:receipts@manual"), "{completed:?}");
    assert!(shop(&jobs, &["schedules", "run", "nope"]).await.is_err());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker).await.unwrap().unwrap().unwrap();
    clean(&jobs, &prefix).await;
}

#[test]
fn enqueue_help_lists_the_registry_kinds_and_flags_parse_before_or_after_the_kind() {
    let mut command = cli::list_kinds(ShopCli::command(), "enqueue", registry().catalog());
    let help = command.find_subcommand_mut("enqueue").unwrap().render_long_help().to_string();
    assert!(help.contains("SEND_RECEIPT") && help.contains("on shop:mail") && help.contains("REFUND"), "{help}");
    assert!(help.contains("--priority") && help.contains("--wait") && help.contains("--file"), "{help}");

    let before =
        ShopCli::try_parse_from(["shop", "enqueue", "--wait", "--key", "k", "REFUND", "order_id=o-1"]).unwrap();
    let after = ShopCli::try_parse_from(["shop", "enqueue", "REFUND", "order_id=o-1", "--wait", "--key=k"]).unwrap();
    for parsed in [before, after] {
        let ShopCommand::Enqueue(args) = parsed.command else { panic!("an enqueue") };
        let flags = args.flags().unwrap();
        assert!(flags.wait && flags.key.as_deref() == Some("k"), "{flags:?}");
        let plan = cli::job_from_args(&args, registry().catalog()).unwrap();
        assert_eq!(plan.job.payload, json!({ "job_type": "REFUND", "order_id": "o-1" }));
        assert_eq!(plan.options.key.as_deref(), Some("k"));
    }
    let usage = ShopCli::try_parse_from(["shop", "enqueue"]).unwrap();
    let ShopCommand::Enqueue(args) = usage.command else { panic!("an enqueue") };
    let error = cli::job_from_args(&args, registry().catalog()).unwrap_err().to_string();
    assert_eq!(error, "give a job kind (one of SEND_RECEIPT, REFUND) or --file");
}

#[tokio::test]
async fn schedules_add_show_pause_resume_and_remove_run_time_schedules_beside_the_file_ones() {
    let (jobs, prefix) = connect();
    let store = jobs.schedules();
    let ok = |args: &'static [&'static str]| {
        let jobs = jobs.clone();
        async move { assert_eq!(shop(&jobs, args).await.unwrap(), ExitCode::SUCCESS, "{args:?}") }
    };

    // `schedules add`: the job as KIND field=value with its flags after it; the same again is a no-op.
    let pinger = &[
        "schedules",
        "add",
        "pinger",
        "--every",
        "1s",
        "--limit",
        "2",
        "SEND_RECEIPT",
        "order_id=p",
        "amount=1",
        "--priority",
        "2",
    ];
    ok(pinger).await;
    ok(pinger).await;
    let spec = store.get("pinger").await.unwrap().expect("stored");
    assert_eq!((spec.every_secs, spec.limit), (Some(1), Some(2)));
    assert_eq!(
        spec.job,
        json!({ "job_type": "SEND_RECEIPT", "order_id": "p", "amount": 1, "options": { "priority": 2 } })
    );
    // Cron, timezone, start, end, misfire and a job file.
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}-job.json"));
    std::fs::write(&file, r#"{"job_type": "SEND_RECEIPT", "order_id": "nightly", "amount": 3}"#).unwrap();
    let nightly = [
        "schedules",
        "add",
        "nightly",
        "--cron",
        "0 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--start",
        "2026-01-01T00:00:00Z",
        "--end",
        "+30d",
        "--misfire",
        "skip",
        "--file",
        file.to_str().unwrap(),
    ];
    assert_eq!(shop(&jobs, &nightly).await.unwrap(), ExitCode::SUCCESS);
    let spec = store.get("nightly").await.unwrap().expect("stored");
    assert_eq!((spec.cron.as_deref(), spec.timezone.as_deref()), (Some("0 2 * * *"), Some("Europe/Berlin")));
    assert_eq!(spec.misfire, eventmill_jobs::scheduler::Misfire::Skip);
    assert!(spec.end.unwrap() > chrono::Utc::now() + chrono::Duration::days(29), "{spec:?}");
    ok(&["schedules", "add", "json-job", "--every", "1h", "--job", r#"{"job_type":"REFUND","order_id":"o"}"#]).await;

    // A bad definition is a usage error (exit 2) naming its cause; nothing is stored.
    for args in [
        &["schedules", "add", "bad", "--cron", "61 * * * *", "SEND_RECEIPT", "order_id=p", "amount=1"][..],
        &["schedules", "add", "bad", "--every", "30s"],
        &["schedules", "add", "bad", "--every", "30s", "--tz", "Mars/Base", "REFUND", "order_id=o"],
        &["schedules", "add", "bad", "--every", "30s", "NO_SUCH_KIND"],
        &["schedules", "add", "bad", "--every", "30s", "--job", "{not json"],
        &["schedules", "add", "bad name", "--every", "30s", "REFUND", "order_id=o"],
        &["schedules", "add", "receipts", "--every", "30s", "REFUND", "order_id=o"],
    ] {
        assert_eq!(shop(&jobs, args).await.unwrap(), ExitCode::from(2), "{args:?}");
    }
    assert!(shop(&jobs, &["schedules", "add", "bad", "--every", "1s", "--cron", "* * * * *", "REFUND"]).await.is_err());
    assert!(store.get("bad").await.unwrap().is_none());

    // list and show, file and run-time together.
    ok(&["schedules", "list"]).await;
    ok(&["schedules", "list", "--json"]).await;
    ok(&["schedules", "show", "pinger"]).await;
    ok(&["schedules", "show", "receipts", "--json"]).await;
    let unknown = shop(&jobs, &["schedules", "show", "nope"]).await.unwrap_err().to_string();
    assert!(unknown.contains("no schedule named \"nope\"") && unknown.contains("receipts"), "{unknown}");

    // pause and resume, a file schedule too (kept in Redis).
    ok(&["schedules", "pause", "receipts"]).await;
    assert!(store.is_paused("receipts").await.unwrap());
    ok(&["schedules", "resume", "receipts"]).await;
    assert!(!store.is_paused("receipts").await.unwrap());
    let unknown = shop(&jobs, &["schedules", "pause", "nope"]).await.unwrap_err().to_string();
    assert!(unknown.contains("no schedule named \"nope\""), "{unknown}");

    // remove: a file schedule is refused with the fix; an unknown one is an error.
    let refused = shop(&jobs, &["schedules", "remove", "receipts"]).await.unwrap_err().to_string();
    assert!(refused.contains("defined in scheduler.toml; edit the file"), "{refused}");
    ok(&["schedules", "remove", "nightly"]).await;
    ok(&["schedules", "remove", "json-job"]).await;
    assert!(store.get("nightly").await.unwrap().is_none());
    let gone = shop(&jobs, &["schedules", "remove", "nightly"]).await.unwrap_err().to_string();
    assert!(gone.contains("no schedule named \"nightly\""), "{gone}");

    // The schedule added from the CLI runs: a scheduler enqueues its two runs (its limit), with
    // the priority given; paused first, its ticks are skipped and ledgered as such.
    ok(&["schedules", "pause", "pinger"]).await;
    let shutdown = Shutdown::new();
    let scheduler = Arc::new(jobs.scheduler(Vec::new()));
    let run = tokio::spawn(eventmill_jobs::scheduler::run(scheduler.clone(), shutdown.clone()));
    let skipped = async {
        for _ in 0..100 {
            if !store.ledger("pinger").await.unwrap().is_empty() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(skipped.await, "a paused schedule's tick is ledgered");
    let ledger = store.ledger("pinger").await.unwrap();
    assert!(ledger.iter().all(|e| !e.enqueued && e.reason == Some(eventmill_jobs::scheduler::TickReason::Paused)));
    assert!(jobs_in(&jobs, JobState::Waiting).await.is_empty());
    ok(&["schedules", "resume", "pinger"]).await;
    tokio::time::sleep(Duration::from_millis(5000)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap().unwrap();
    let waiting = jobs_in(&jobs, JobState::Waiting).await;
    assert_eq!(waiting.len(), 2, "two runs, its limit: {waiting:?}");
    assert!(waiting.iter().all(|j| j.priority == 2 && j.origin.starts_with("schedule:pinger@")), "{waiting:?}");
    let detail = scheduler.detail("pinger").await.unwrap();
    assert!(detail.status.ended && detail.status.runs == 2 && detail.status.next_run.is_none(), "{detail:?}");
    assert_eq!(detail.ledger.iter().filter(|e| e.enqueued).count(), 2, "{:?}", detail.ledger);
    ok(&["schedules", "remove", "pinger"]).await;
    clean(&jobs, &prefix).await;
}

/// `jobs cancel` of a job holding a simple deduplication key (`--key K --dedup simple`, no TTL)
/// lets go of the key: the same enqueue afterwards is a new job.
#[tokio::test]
async fn jobs_cancel_lets_go_of_a_simple_dedup_key() {
    let (jobs, prefix) = connect();
    let key = format!("{}idempotency:order-9", eventmill_jobs::queue::key_base(&prefix));
    let holder = || async {
        let mut redis = jobs.redis().clone();
        redis::cmd("GET").arg(&key).query_async::<Option<String>>(&mut redis).await.unwrap()
    };
    let enqueue = ["enqueue", "SEND_RECEIPT", "order_id=o-9", "amount=9", "--key", "order-9", "--dedup", "simple"];
    assert_eq!(shop(&jobs, &enqueue).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(shop(&jobs, &enqueue).await.unwrap(), ExitCode::SUCCESS, "a duplicate is not an error");
    let waiting = jobs_in(&jobs, JobState::Waiting).await;
    assert_eq!(waiting.len(), 1, "the second enqueue was a duplicate: {waiting:?}");
    let first = waiting[0].id.clone();
    assert_eq!(holder().await, Some(first.clone()), "the waiting job holds its key");

    assert_eq!(shop(&jobs, &["jobs", "cancel", &first]).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(holder().await, None, "the cancelled job let go of its key");
    assert_eq!(shop(&jobs, &enqueue).await.unwrap(), ExitCode::SUCCESS);
    let waiting = jobs_in(&jobs, JobState::Waiting).await;
    assert!(waiting.len() == 1 && waiting[0].id != first, "the key enqueued a new job: {waiting:?}");
    assert_eq!(holder().await, Some(waiting[0].id.clone()));
    clean(&jobs, &prefix).await;
}
