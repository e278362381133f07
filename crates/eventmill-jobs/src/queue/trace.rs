//! Traces across the queue: the W3C trace context (`traceparent`) of the span that enqueues a job
//! is kept in the job's hash (field `trace`), and each attempt's span continues it, so an
//! OpenTelemetry backend shows the caller, the enqueue and every attempt as one trace (a job a
//! processor enqueues, a flow's children included, is linked under the attempt or the flow's
//! enqueue in turn).
//!
//! Nothing here installs a tracer: the spans are ordinary `tracing` spans, and the links appear
//! when the application installs a `tracing-opentelemetry` layer. Without one, [`current`]
//! answers `None` after one failed downcast, no span is created for the enqueue and no field is
//! written: a job costs nothing more.
//!
//! ```no_run
//! use eventmill_jobs::queue::trace;
//!
//! // A caller continuing a trace that came from elsewhere (a message header, a file...):
//! let span = tracing::info_span!("import");
//! trace::set_parent(&span, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! // ... enqueue inside `span`: the job's attempts join that trace.
//! ```

use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C `traceparent` of the current span (`00-<trace id>-<span id>-<flags>`), or `None` when
/// no OpenTelemetry layer is installed or no trace is active: what the queue stores in a job.
pub fn current() -> Option<String> {
    of(&tracing::Span::current())
}

/// The W3C `traceparent` of `span`, `None` without an OpenTelemetry layer or a valid context.
pub fn of(span: &tracing::Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| format_traceparent(&span_context))
}

/// Makes `traceparent` the OpenTelemetry parent of `span` (before it is first entered); false
/// when the text is not a valid `traceparent`, no OpenTelemetry layer is installed or the span
/// already started. A job's attempt span is continued this way from the job's `trace` field.
pub fn set_parent(span: &tracing::Span, traceparent: &str) -> bool {
    match parse_traceparent(traceparent) {
        Some(remote) => span.set_parent(Context::new().with_remote_span_context(remote)).is_ok(),
        None => false,
    }
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
pub fn format_traceparent(context: &SpanContext) -> String {
    format!("00-{}-{}-{:02x}", context.trace_id(), context.span_id(), context.trace_flags().to_u8())
}

/// A `traceparent` header's span context (remote), `None` if it is not one: version 00 (or a later
/// version's first four parts), ids not all zero, lower-case hex.
pub fn parse_traceparent(text: &str) -> Option<SpanContext> {
    let mut parts = text.trim().split('-');
    let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !hex(trace_id, 32) || !hex(span_id, 16) || !hex(flags, 2) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()? & TraceFlags::SAMPLED.to_u8());
    let context = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_reads_back_as_it_was_written() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = parse_traceparent(text).unwrap();
        assert!(context.is_remote() && context.is_sampled());
        assert_eq!(format_traceparent(&context), text);
    }

    #[test]
    fn malformed_or_empty_traceparents_are_refused() {
        for text in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse_traceparent(text).is_none(), "{text}");
        }
    }

    #[test]
    fn without_an_opentelemetry_layer_there_is_no_trace_to_store() {
        let span = tracing::info_span!("no layer");
        let _entered = span.enter();
        assert_eq!(current(), None);
    }
}
