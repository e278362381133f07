//! Types every stage shares, parsed once at the boundary so nothing downstream re-validates.

pub mod event;
pub mod job;
pub mod job_checks;
pub mod name;
pub mod storable;

pub use event::{Event, EventError, parse_event};
pub use name::Name;
pub use storable::check_storable;
