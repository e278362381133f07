//! Worker processes on the board (`/workers`, `GET /api/workers`): every process that runs
//! workers, with its host, pid, version, queues and their concurrency, the jobs it runs (linked to
//! their pages), when it started and its last beat. A process that dies leaves the list when its
//! lease runs out (`<PREFIX>_JOB_WORKER_LEASE_MS` after its last beat), as the page says.

use askama::Template;
use axum::{
    Json,
    extract::{OriginalUri, State},
};
use chrono::{SecondsFormat, TimeZone, Utc};
use serde::Serialize;

use super::{
    BoardError, BoardState, Viewer,
    error::PageResult,
    jobs::human_ms,
    pages::{Nav, render},
};
use crate::queue::{ProcessInfo, now_ms};

/// `GET /api/workers`: the live processes and how long one stays listed after its last beat.
#[derive(Debug, Serialize)]
pub struct WorkersReply {
    /// A process leaves the list this many seconds after its last beat.
    pub lease_seconds: f64,
    /// The live processes, by host then pid.
    pub processes: Vec<ProcessInfo>,
}

async fn reply(board: &BoardState) -> Result<WorkersReply, BoardError> {
    let processes = board.queues.processes();
    Ok(WorkersReply { lease_seconds: processes.lease().as_secs_f64(), processes: processes.list().await? })
}

/// `GET /api/workers`
pub(crate) async fn api(_: Viewer, State(board): State<BoardState>) -> Result<Json<WorkersReply>, BoardError> {
    Ok(Json(reply(&board).await?))
}

/// A process as the page shows it.
struct ProcessRow {
    info: ProcessInfo,
    /// `5 min 3 s ago`, with the exact UTC time for the hover.
    started: (String, String),
    beat: (String, String),
    /// Seconds until it leaves the list unless it beats again.
    leaves_in: String,
}

fn when(ms: i64, now: i64) -> (String, String) {
    let exact = Utc
        .timestamp_millis_opt(ms)
        .single()
        .map_or_else(String::new, |t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    (format!("{} ago", human_ms(now - ms)), exact)
}

#[derive(Template)]
#[template(path = "board/workers.html")]
struct WorkersPage {
    nav: Nav,
    lease: String,
    processes: Vec<ProcessRow>,
}

/// `GET /workers`
pub(crate) async fn page(viewer: Viewer, State(board): State<BoardState>, OriginalUri(uri): OriginalUri) -> PageResult {
    let reply = reply(&board).await?;
    let now = now_ms();
    let processes: Vec<ProcessRow> = reply
        .processes
        .iter()
        .cloned()
        .map(|info| ProcessRow {
            started: when(info.started_at, now),
            beat: when(info.beat_at, now),
            leaves_in: human_ms(info.leaves_at() - now),
            info,
        })
        .collect();
    // The processes' own lease (they may be configured apart from this board's process).
    let lease_ms = reply.processes.iter().map(|p| p.lease_ms).max().unwrap_or((reply.lease_seconds * 1000.0) as i64);
    let lease = human_ms(lease_ms);
    render(&WorkersPage { nav: Nav::new(&board, &viewer, "workers", &uri), lease, processes })
}
