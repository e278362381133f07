//! SLOs on the board (`/slos`, `GET /api/slos`): per job kind, each objective's target and window,
//! the value measured over it and its state (ok, or breached since when). Reading evaluates (the
//! same atomic transitions as the workers' periodic check, see [`slo`](crate::queue::slo)).

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
use crate::queue::{SloStatus, now_ms};

/// `GET /api/slos`: every SLO in force, measured now.
#[derive(Debug, Serialize)]
pub struct SlosReply {
    /// Kinds with a breached SLO.
    pub breached: usize,
    /// Per kind and objective, in registration order.
    pub slos: Vec<SloStatus>,
}

/// `GET /api/slos`
pub(crate) async fn api(_: Viewer, State(board): State<BoardState>) -> Result<Json<SlosReply>, BoardError> {
    let slos = board.queues.evaluate_slos().await?;
    Ok(Json(SlosReply { breached: slos.iter().filter(|s| s.breached).count(), slos }))
}

/// One kind's card.
struct KindCard {
    queue: &'static str,
    kind: &'static str,
    breached: bool,
    rows: Vec<Row>,
}

struct Row {
    status: SloStatus,
    /// `3 min 2 s ago` and the exact UTC time, when breached.
    since: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "board/slos.html")]
struct SlosPage {
    nav: Nav,
    cards: Vec<KindCard>,
}

/// `GET /slos`
pub(crate) async fn page(viewer: Viewer, State(board): State<BoardState>, OriginalUri(uri): OriginalUri) -> PageResult {
    let now = now_ms();
    let mut cards: Vec<KindCard> = Vec::new();
    for status in board.queues.evaluate_slos().await? {
        let since = status.breached_since.map(|at| {
            let exact = Utc
                .timestamp_millis_opt(at)
                .single()
                .map_or_else(String::new, |t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
            (format!("{} ago", human_ms(now - at)), exact)
        });
        let row = Row { status, since };
        match cards.last_mut() {
            Some(card) if card.kind == row.status.slo.kind => {
                card.breached |= row.status.breached;
                card.rows.push(row);
            }
            _ => cards.push(KindCard {
                queue: row.status.slo.queue,
                kind: row.status.slo.kind,
                breached: row.status.breached,
                rows: vec![row],
            }),
        }
    }
    render(&SlosPage { nav: Nav::new(&board, &viewer, "slos", &uri), cards })
}
