//! `GET /v1/analytics/live`: Server-Sent Events, one `counters` message per second from the
//! process's shared feed, keep-alive comments in between; 503 when every slot is taken.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::{Stream, stream};
use tokio::sync::broadcast::error::RecvError;

use crate::web::{ApiError, AppState, auth::Principal};

/// The live counters as an SSE stream.
pub async fn live(
    _: Principal,
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let subscription = state.feed.subscribe().ok_or(ApiError::Unavailable { retry_after: 5 })?;
    let events = stream::unfold(subscription, |mut subscription| async move {
        loop {
            match subscription.receiver.recv().await {
                Ok(message) => {
                    return Some((Ok(Event::default().event("counters").data(message.as_str())), subscription));
                }
                // A slow client skips what it missed; the next snapshot carries the recent seconds.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
