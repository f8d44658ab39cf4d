//! Logs on standard error: text by default, or with
//! `GATEHOUSE_LOG_FORMAT=json` one JSON object a line (SPEC §15). Lines
//! written while a request is served carry its `request_id` (the span the
//! API opens per request, `api/src/request_id.rs`) as a top-level field,
//! the same id as the `X-Request-Id` header and the request's audit
//! records.

use std::fmt;

use serde_json::Value;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// From `GATEHOUSE_LOG_FORMAT`: `json`, or `text` (also when unset).
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("") | Some("text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(format!(
                "GATEHOUSE_LOG_FORMAT must be text or json, not {:?}",
                other.chars().take(20).collect::<String>()
            )),
        }
    }
}

pub fn init(format: LogFormat, level: tracing::Level) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .event_format(RequestIdOnTop(
                tracing_subscriber::fmt::format()
                    .json()
                    .with_current_span(false)
                    .with_span_list(true),
            ))
            .init(),
    }
}

/// The JSON formatter, with the innermost `request_id` of the event's
/// spans copied to the top level of the line (so a log pipeline finds it
/// without walking the span list).
struct RequestIdOnTop<F>(F);

impl<S, N, F> FormatEvent<S, N> for RequestIdOnTop<F>
where
    F: FormatEvent<S, N>,
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let Ok(mut value) = serde_json::from_str::<Value>(line.trim_end()) else {
            return writer.write_str(&line);
        };
        let id = value["spans"].as_array().and_then(|spans| {
            spans
                .iter()
                .rev()
                .find_map(|span| span.get("request_id").cloned())
        });
        if let (Some(id), Some(object)) = (id, value.as_object_mut()) {
            object.insert("request_id".into(), id);
        }
        writeln!(writer, "{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_text_unless_json_is_asked_for() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("text")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("json")), Ok(LogFormat::Json));
        assert!(LogFormat::parse(Some("yaml")).is_err());
    }
}
