//! Where `flow`'s logs go. Human-readable text by default and JSON lines with
//! `FLOW_LOG_FORMAT=json` or in `flow run --json` mode, always on stderr. While the progress
//! display of `flow run` is live, text lines are held back and printed below its summary table,
//! so they never tear the table apart.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Most log lines held back during one run; beyond that only the count of dropped ones is kept.
const MAX_HELD_LINES: usize = 10_000;

#[derive(Default)]
struct State {
    holding: bool,
    held: Vec<u8>,
    held_lines: usize,
    dropped: usize,
}

/// The log writer: stderr, or a buffer while a display holds the terminal.
#[derive(Clone, Default)]
pub(crate) struct Logs {
    state: Arc<Mutex<State>>,
}

/// The output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

impl Format {
    /// From `FLOW_LOG_FORMAT` (`text` or `json`; text when unset).
    pub(crate) fn from_env() -> Result<Format, String> {
        match std::env::var("FLOW_LOG_FORMAT").as_deref().map(str::trim) {
            Err(_) | Ok("" | "text") => Ok(Format::Text),
            Ok("json") => Ok(Format::Json),
            Ok(other) => Err(format!("FLOW_LOG_FORMAT=`{other}`: expected `text` or `json`")),
        }
    }
}

impl Logs {
    /// Installs the global subscriber: the logs, which `FLOW_LOG` filters (default `warn`),
    /// and the spans `telemetry` exports, filtered on their own.
    pub(crate) fn install(format: Format, telemetry: Option<&flow_telemetry::Telemetry>) -> Logs {
        let logs = Logs::default();
        let filter = tracing_subscriber::EnvFilter::try_from_env("FLOW_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let text = tracing_subscriber::fmt::layer().with_writer(logs.clone());
        let text = match format {
            Format::Json => text.json().boxed(),
            Format::Text => text.with_ansi(io::IsTerminal::is_terminal(&io::stderr())).boxed(),
        };
        let registry = tracing_subscriber::registry().with(text.with_filter(filter));
        // Not an Option layer: an absent one would still enable every span for the registry.
        match telemetry {
            Some(t) => registry.with(t.layer()).init(),
            None => registry.init(),
        }
        logs
    }

    /// Holds log lines back until [`Logs::release`].
    pub(crate) fn hold(&self) {
        self.lock().holding = true;
    }

    /// Writes the lines held back to stderr and stops holding.
    pub(crate) fn release(&self) {
        let mut state = self.lock();
        state.holding = false;
        let mut stderr = io::stderr().lock();
        let _ = stderr.write_all(&state.held);
        if state.dropped > 0 {
            let _ = writeln!(stderr, "({} more log lines were dropped)", state.dropped);
        }
        state.held = Vec::new();
        state.held_lines = 0;
        state.dropped = 0;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One log event's writer.
pub(crate) struct Line {
    logs: Logs,
    text: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        // A secret value in a log line (a driver echoing a URL) never reaches the terminal.
        let redactor = flow_engine::Redactor::global();
        if !redactor.is_empty() {
            self.text = redactor.scrub(&String::from_utf8_lossy(&self.text)).into_bytes();
        }
        let mut state = self.logs.lock();
        if !state.holding {
            let _ = io::stderr().lock().write_all(&self.text);
        } else if state.held_lines < MAX_HELD_LINES {
            state.held.extend_from_slice(&self.text);
            state.held_lines += 1;
        } else {
            state.dropped += 1;
        }
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { logs: self.clone(), text: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(logs: &Logs, text: &str) {
        let mut line = logs.make_writer();
        line.write_all(text.as_bytes()).expect("buffered");
    }

    #[test]
    fn lines_are_held_while_holding_and_bounded() {
        let logs = Logs::default();
        logs.hold();
        log(&logs, "a\n");
        log(&logs, "b\n");
        assert_eq!(logs.lock().held, b"a\nb\n");
        logs.lock().held_lines = MAX_HELD_LINES;
        log(&logs, "c\n");
        assert_eq!(logs.lock().dropped, 1);
        logs.release();
        let state = logs.lock();
        assert!(!state.holding && state.held.is_empty() && state.dropped == 0);
    }
}
