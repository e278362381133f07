//! What the board is given by its host: the queues (with their catalog), where schedules come
//! from, where it is mounted, how it is titled and linked, where audit records go; and who is
//! asking, as the host's auth layer tells it ([`Viewer`]).

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};

use super::{AuditEntry, BoardError};
use crate::{Queues, scheduler::Scheduler};

/// What the board may do for a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything and may act (retry, remove, pause, enqueue...).
    Admin,
    /// Sees everything; every action answers 403.
    #[serde(rename = "readonly")]
    ReadOnly,
}

impl Role {
    /// The role's name as pages and audit records show it (`admin`, `readonly`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReadOnly => "readonly",
        }
    }
}

/// Who is asking, as the host's authentication decided: the board's only source of identity.
/// The host's middleware inserts it into the request's extensions; a request without one is
/// refused (401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// What the viewer may do.
    pub role: Role,
    /// How audit records and job origins name the viewer (a user name, a token's fingerprint).
    pub name: String,
    /// The CSRF token the board's forms must send back, for viewers authenticated by something a
    /// browser sends by itself (a session cookie). `None` for bearer-token callers, who need none.
    pub csrf: Option<String>,
}

impl Viewer {
    /// A viewer who may act.
    pub fn admin(name: impl Into<String>) -> Self {
        Self { role: Role::Admin, name: name.into(), csrf: None }
    }

    /// A viewer who may only look.
    pub fn read_only(name: impl Into<String>) -> Self {
        Self { role: Role::ReadOnly, name: name.into(), csrf: None }
    }

    /// The session's CSRF token: actions then need it (form field `csrf` or header
    /// `X-CSRF-Token`), and the board's pages carry it.
    pub fn with_csrf(self, token: impl Into<String>) -> Self {
        Self { csrf: Some(token.into()), ..self }
    }

    /// Whether the viewer may act.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = BoardError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Viewer>().cloned().ok_or(BoardError::NoViewer)
    }
}

/// Where the schedules page reads its schedules: called on every request, so an edited file is
/// shown at once (and a broken one is shown as the error it is, 409).
pub type ScheduleSource = Arc<dyn Fn() -> Result<Scheduler, String> + Send + Sync>;

/// Where audit records go.
type AuditSink = Arc<dyn Fn(&AuditEntry<'_>) + Send + Sync>;

/// A link of the host's own in the board's navigation.
#[derive(Clone, Debug)]
pub(crate) struct NavLink {
    pub(crate) label: String,
    pub(crate) href: String,
}

/// Everything the board needs, built once by the host. Cheap to clone.
#[derive(Clone)]
pub struct BoardState {
    pub(crate) queues: Queues,
    pub(crate) schedules: Option<ScheduleSource>,
    pub(crate) base: String,
    pub(crate) title: String,
    pub(crate) links_before: Vec<NavLink>,
    pub(crate) links_after: Vec<NavLink>,
    pub(crate) logout: Option<String>,
    pub(crate) home: bool,
    pub(crate) audit: AuditSink,
}

impl BoardState {
    /// The board of `queues` (their catalog names the queues and kinds), mounted at `base_path`
    /// (`"/jobs"`; `""` at the root): its pages link each other under it.
    pub fn new(queues: Queues, base_path: &str) -> Self {
        Self {
            queues,
            schedules: None,
            base: base_path.trim_end_matches('/').to_owned(),
            title: "jobs".to_owned(),
            links_before: Vec::new(),
            links_after: Vec::new(),
            logout: None,
            home: true,
            audit: Arc::new(log_audit),
        }
    }

    /// The title every page ends with, and the brand in the header (`"my app jobs"`).
    pub fn title(self, title: impl Into<String>) -> Self {
        Self { title: title.into(), ..self }
    }

    /// Shows the schedules page (and its "Run now") from `source`.
    pub fn schedules(self, source: impl Fn() -> Result<Scheduler, String> + Send + Sync + 'static) -> Self {
        Self { schedules: Some(Arc::new(source)), ..self }
    }

    /// A link to a page of the host's, shown in the navigation before the board's own entries.
    pub fn link(mut self, label: impl Into<String>, href: impl Into<String>) -> Self {
        self.links_before.push(NavLink { label: label.into(), href: href.into() });
        self
    }

    /// A link to a page of the host's, shown in the navigation after the board's own entries.
    pub fn link_after(mut self, label: impl Into<String>, href: impl Into<String>) -> Self {
        self.links_after.push(NavLink { label: label.into(), href: href.into() });
        self
    }

    /// The host's logout URL (a `POST` form in the header for viewers with a session, i.e. a CSRF
    /// token).
    pub fn logout(self, url: impl Into<String>) -> Self {
        Self { logout: Some(url.into()), ..self }
    }

    /// Whether the board answers at its mount point itself (the queue list, as `/queues`); a host
    /// with its own front page there turns it off. On by default.
    pub fn home_page(self, on: bool) -> Self {
        Self { home: on, ..self }
    }

    /// Where audit records go (every action, allowed or refused); by default a `tracing` event
    /// with target `eventmill_jobs::audit`.
    pub fn audit(self, sink: impl Fn(&AuditEntry<'_>) + Send + Sync + 'static) -> Self {
        Self { audit: Arc::new(sink), ..self }
    }

    /// The queues it shows.
    pub fn queues(&self) -> &Queues {
        &self.queues
    }

    /// The path it is mounted at, without a trailing slash.
    pub fn base_path(&self) -> &str {
        &self.base
    }
}

/// The default audit sink.
fn log_audit(entry: &AuditEntry<'_>) {
    let (role, viewer) = entry.viewer.map_or(("none", ""), |v| (v.role.as_str(), v.name.as_str()));
    let (action, subject, outcome) = (entry.action, entry.subject, entry.outcome.as_str());
    tracing::info!(target: "eventmill_jobs::audit", role, viewer, action, subject, outcome, "{}", entry.message);
}
