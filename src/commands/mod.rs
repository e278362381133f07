//! What each subcommand does, as a composition of the library's parts.

pub mod bench_jobs;
pub mod enqueue;

use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    app::{self, Resources},
    cli::{self, Command, DeadLettersCommand, ListArgs, ReplayArgs},
    loadgen,
    processors::Analytics,
    queue::Registry,
    redis_limits::{enqueue as enqueue_limits, policy},
    settings::Settings,
    shutdown,
    stream::dead_letter,
    telemetry,
};

/// The whole program for the job kinds of `registry`: parse the command line, start telemetry,
/// load settings, run the subcommand. eventmill's `main` calls it with `processors::registry()`;
/// a binary with job kinds of its own calls it with its registry.
pub async fn main(registry: Registry<Analytics>) -> ExitCode {
    let cli = cli::parse(registry.catalog());
    let telemetry = telemetry::init();
    let settings = match Settings::from_env(registry.catalog()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let code = match dispatch_with(cli.command, settings, registry).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    };
    // The trace exporter's last batch (nothing to do when traces are off).
    telemetry.shutdown().await;
    code
}

/// Runs one subcommand with eventmill's job kinds.
pub async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    dispatch_with(command, settings, crate::processors::registry()).await
}

/// Runs one subcommand; the exit code follows SPEC section 12 (0 ok, 1 failure, 2 usage).
pub async fn dispatch_with(
    command: Command,
    settings: Settings,
    registry: Registry<Analytics>,
) -> anyhow::Result<ExitCode> {
    if let Command::Config = command {
        print_config(&settings, &registry);
        return Ok(ExitCode::SUCCESS);
    }
    // Every process that talks to Redis refuses an evicting one first (`redis_limits::policy`).
    let resources = move |settings| {
        let resources = Resources::with_registry(settings, registry);
        async move {
            let resources = resources?;
            check_redis(&resources).await?;
            Ok::<_, anyhow::Error>(resources)
        }
    };
    match command {
        Command::Config => unreachable!("answered above"),
        Command::BenchJobs(args) => bench_jobs::run(settings, args).await?,
        Command::Loadgen(args) => loadgen::run(args, &settings, shutdown::on_signal()).await?,
        Command::Migrate => {
            let resources = resources(settings).await?;
            resources.migrate().await?;
            println!("database migrated; partitions ready");
        }
        Command::Run => {
            let resources = resources(settings).await?;
            resources.announce_admin_token();
            let listener = bind(&resources).await?;
            let shutdown = shutdown::on_signal();
            let run = app::run_waiting_for_postgres(&resources, listener, shutdown.clone());
            with_metrics(&resources, &shutdown, run).await?;
            stopped_by_redis(&resources)?;
        }
        Command::Serve => {
            let resources = resources(settings).await?;
            resources.announce_admin_token();
            let listener = bind(&resources).await?;
            let shutdown = shutdown::on_signal();
            with_metrics(&resources, &shutdown, app::serve(&resources, listener, shutdown.clone())).await?;
            stopped_by_redis(&resources)?;
        }
        Command::Worker => {
            let resources = resources(settings).await?;
            let shutdown = shutdown::on_signal();
            let worker = app::worker_waiting_for_postgres(&resources, shutdown.clone());
            with_metrics(&resources, &shutdown, worker).await?;
            stopped_by_redis(&resources)?;
        }
        Command::Enqueue(args) => {
            let resources = resources(settings).await?;
            enqueue_limits::check_memory(&resources.redis, resources.settings.redis_limits).await?;
            return match args.run(&resources.queues).await {
                Err(error) => Err(enqueue_limits::explain(error, &resources.redis).await),
                done => done,
            };
        }
        Command::Jobs(command) => return command.run(&resources(settings).await?.queues).await,
        Command::Schedules(command) => return command.run(&resources(settings).await?.scheduler()?).await,
        Command::DeadLetters(DeadLettersCommand::List(args)) => list_dead_letters(settings, args).await?,
        Command::DeadLetters(DeadLettersCommand::Replay(args)) => replay_dead_letters(settings, args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses an evicting Redis (unless `EVENTMILL_ALLOW_EVICTING_REDIS`); a Redis that does not
/// answer yet is checked by the watch once it does.
async fn check_redis(resources: &Resources) -> anyhow::Result<()> {
    let mut conn = resources.redis.clone();
    let allow = resources.settings.redis_limits.allow_evicting;
    match policy::check_at_start(&mut conn, allow, resources.settings.ingest.redis_timeout).await? {
        policy::PolicyCheck::Unknown(why) => {
            tracing::warn!(%why, "could not read Redis' maxmemory-policy at start; it is checked once Redis answers")
        }
        _ => resources.redis_watch.policy_judged(),
    }
    Ok(())
}

/// The error of a process the Redis watch stopped (an evicting Redis found after start).
fn stopped_by_redis(resources: &Resources) -> anyhow::Result<()> {
    match resources.redis_watch.fatal() {
        Some(reason) => Err(anyhow::anyhow!(reason)),
        None => Ok(()),
    }
}

/// Runs `part` beside the open `/metrics` listener (when configured); either failing stops both.
async fn with_metrics(
    resources: &Resources,
    shutdown: &shutdown::Shutdown,
    part: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let metrics = app::serve_metrics(resources, shutdown.clone());
    let (part, metrics) = tokio::join!(
        async {
            let result = part.await;
            shutdown.cancel();
            result
        },
        async {
            let result = metrics.await;
            if result.is_err() {
                shutdown.cancel();
            }
            result
        }
    );
    part.and(metrics)
}

async fn bind(resources: &Resources) -> anyhow::Result<TcpListener> {
    let addr = resources.settings.http_addr;
    TcpListener::bind(addr).await.with_context(|| format!("could not listen on {addr} (EVENTMILL_HTTP_ADDR)"))
}

async fn list_dead_letters(settings: Settings, args: ListArgs) -> anyhow::Result<()> {
    let resources = Resources::new(settings)?;
    check_redis(&resources).await?;
    let mut conn = resources.redis.clone();
    let letters = dead_letter::list(&mut conn, &resources.shards, args.limit).await.context("could not read Redis")?;
    let total = dead_letter::count(&mut conn, &resources.shards).await?;
    if args.json {
        for letter in &letters {
            println!("{}", serde_json::to_string(letter)?);
        }
        return Ok(());
    }
    println!(
        "{total} dead letter(s){}",
        if total as usize > letters.len() { format!(", showing {}", letters.len()) } else { String::new() }
    );
    for letter in letters {
        println!(
            "{}  deliveries={}  failed_at={}  request_id={}",
            letter.id, letter.deliveries, letter.failed_at, letter.request_id
        );
        println!("    reason: {}", letter.reason);
        println!("    event:  {}", truncate(&letter.payload, 200));
    }
    Ok(())
}

async fn replay_dead_letters(settings: Settings, args: ReplayArgs) -> anyhow::Result<()> {
    let resources = Resources::new(settings)?;
    check_redis(&resources).await?;
    let mut conn = resources.redis.clone();
    let done = if args.all {
        dead_letter::replay_all(&mut conn, &resources.shards).await
    } else {
        dead_letter::replay(&mut conn, &resources.shards, &args.ids).await
    }
    .context("could not replay: is Redis running at EVENTMILL_REDIS_URL?")?;
    println!("replayed {} dead letter(s)", done.replayed);
    if !done.not_found.is_empty() {
        anyhow::bail!("no dead letter with id {}", done.not_found.join(", "));
    }
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `eventmill config`: every setting (the framework's Redis and job settings included), then each
/// declared queue's rate limit and global concurrency in force.
fn print_config(settings: &Settings, registry: &Registry<Analytics>) {
    let described = settings.describe();
    for (name, value) in &described {
        println!("{name}={value}");
    }
    for spec in registry.queues() {
        let limit = settings.jobs.rate_limit(spec.name, spec.rate_limit);
        println!("{}={}", settings.jobs.rate_limit_variable(spec.name), limit.map_or("none".into(), |l| l.to_string()));
        let variable = eventmill_jobs::settings::global_concurrency_variable(&settings.jobs.env_prefix, spec.name);
        if !described.iter().any(|(name, _)| *name == variable) {
            let global = settings.jobs.global_concurrency(spec.name, spec.global_concurrency);
            println!("{variable}={}", global.map_or("none".into(), |n| n.to_string()));
        }
    }
}
