//! The frame every board page shares: navigation (the host's links and the board's own), the
//! viewer's role, flash messages, the CSRF token forms send back. Templates live in the crate's
//! `templates/board/` and are compiled in by askama, which HTML-escapes every value.

use askama::Template;
use axum::{http::Uri, response::Html};
use serde::Deserialize;

use super::{BoardError, BoardState, Viewer, error::PageResult, state::NavLink};

/// What the frame of every page needs.
pub(crate) struct Nav {
    /// Where the board is mounted (links are `{base}/queues/...`).
    pub(crate) base: String,
    pub(crate) title: String,
    /// The brand in the header: the title's first word, then the rest.
    pub(crate) brand: (String, String),
    pub(crate) links_before: Vec<NavLink>,
    pub(crate) links_after: Vec<NavLink>,
    pub(crate) has_schedules: bool,
    pub(crate) logout: Option<String>,
    pub(crate) role: &'static str,
    pub(crate) is_admin: bool,
    /// The CSRF token forms send back (empty for bearer callers, who need none).
    pub(crate) csrf: String,
    /// Which navigation entry is current.
    pub(crate) active: &'static str,
    /// This page's path and query, where forms return after an action.
    pub(crate) here: String,
    pub(crate) flash: Option<String>,
    pub(crate) flash_error: Option<String>,
}

#[derive(Deserialize)]
struct FlashQuery {
    flash: Option<String>,
    flash_error: Option<String>,
}

impl Nav {
    /// The frame of the page at `uri` (the original URI, mount point included).
    pub(crate) fn new(board: &BoardState, viewer: &Viewer, active: &'static str, uri: &Uri) -> Self {
        let flash: Option<FlashQuery> = uri.query().and_then(|q| serde_urlencoded::from_str(q).ok());
        let (flash, flash_error) = flash.map_or((None, None), |f| (f.flash, f.flash_error));
        // Forms come back here without the flash of the previous action.
        let query: Vec<(String, String)> = uri
            .query()
            .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != "flash" && k != "flash_error")
            .collect();
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        let here = if query.is_empty() { uri.path().to_owned() } else { format!("{}?{query}", uri.path()) };
        let brand = match board.title.split_once(' ') {
            Some((first, rest)) => (first.to_owned(), rest.to_owned()),
            None => (board.title.clone(), String::new()),
        };
        Self {
            base: board.base.clone(),
            title: board.title.clone(),
            brand,
            links_before: board.links_before.clone(),
            links_after: board.links_after.clone(),
            has_schedules: board.schedules.is_some(),
            logout: board.logout.clone(),
            role: viewer.role.as_str(),
            is_admin: viewer.is_admin(),
            csrf: viewer.csrf.clone().unwrap_or_default(),
            active,
            here,
            flash,
            flash_error,
        }
    }

    /// The board's front page: its mount point, or `/` at the root.
    pub(crate) fn home(&self) -> &str {
        if self.base.is_empty() { "/" } else { &self.base }
    }
}

/// Renders a page template.
pub(crate) fn render(page: &impl Template) -> PageResult {
    page.render().map(Html).map_err(|e| BoardError::Internal(format!("template: {e}")).into())
}
