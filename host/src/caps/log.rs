//! The `log` capability and the plugin's WASI stdout/stderr: console lines for the user, log
//! lines into `tracing` under the phase's name, all counted against the phase's output limit.

use crate::bindings::types::{Finding, Severity};
use crate::util::terminal_safe;
use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The longest line of plugin text the host prints or logs (console line, log line, finding
/// message); longer text is cut, saying how much.
pub const MAX_LINE: usize = 16 << 10;

/// At most this many findings are kept per phase; further ones are counted, not kept.
pub const MAX_FINDINGS: usize = 1000;

/// Which terminal stream a console line belongs on (kubeadm prints check warnings to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

type Sink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// Lines a [`Console::buffer`] recorded, with their stream.
pub type Recorded = Arc<Mutex<Vec<(Stream, String)>>>;

/// Where console lines go: the terminal for the CLI, a buffer in tests.
#[derive(Clone)]
pub struct Console(Sink);

impl Console {
    /// The process's stdout and stderr. A closed stream (`wasmadm init | head`) loses the lines
    /// but does not stop the run: a node half set up is worse than a cut listing.
    pub fn stdio() -> Self {
        use std::io::Write as _;
        Self(Arc::new(|stream, line| {
            let _ = match stream {
                Stream::Out => writeln!(std::io::stdout(), "{line}"),
                Stream::Err => writeln!(std::io::stderr(), "{line}"),
            };
        }))
    }

    /// A console that records lines, and the record.
    pub fn buffer() -> (Self, Recorded) {
        let lines: Recorded = Arc::default();
        let sink = lines.clone();
        let console = Self(Arc::new(move |stream, line| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((stream, line.to_string()));
        }));
        (console, lines)
    }

    pub fn out(&self, line: &str) {
        (self.0)(Stream::Out, line);
    }

    pub fn err(&self, line: &str) {
        (self.0)(Stream::Err, line);
    }
}

/// A phase's output allowance, shared by console lines, log lines and stdout/stderr.
pub struct Budget {
    phase: String,
    limit: usize,
    state: Mutex<(usize, bool)>, // (used, warned)
}

impl Budget {
    pub fn new(phase: &str, limit: usize) -> Arc<Self> {
        Arc::new(Self {
            phase: phase.to_string(),
            limit,
            state: Mutex::new((0, false)),
        })
    }

    /// Takes `n` bytes; false (and one warning) once the limit is reached.
    pub fn take(&self, n: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 + n <= self.limit {
            state.0 += n;
            return true;
        }
        if !state.1 {
            state.1 = true;
            tracing::warn!(
                phase = %self.phase,
                "phase exceeded its output limit of {} bytes; further output is dropped (raise limits.output)",
                self.limit
            );
        }
        false
    }
}

/// The log capability of one phase.
pub struct LogCap {
    pub phase: String,
    pub console: Console,
    pub budget: Arc<Budget>,
    /// Findings reported during the call, in order (at most [`MAX_FINDINGS`], their text made
    /// terminal-safe and cut to [`MAX_LINE`]).
    pub findings: Vec<Finding>,
    /// Findings past [`MAX_FINDINGS`], counted: errors among them still fail the phase.
    pub dropped: usize,
    pub dropped_errors: usize,
}

impl LogCap {
    pub fn new(phase: &str, console: Console, budget: Arc<Budget>) -> Self {
        Self {
            phase: phase.to_string(),
            console,
            budget,
            findings: Vec::new(),
            dropped: 0,
            dropped_errors: 0,
        }
    }

    /// Prints a warning at once (`\t[WARNING name]: message`, on stderr as kubeadm does) and keeps
    /// the finding for the end of the phase. What is kept is bounded: past [`MAX_FINDINGS`] a
    /// finding is only counted, and past the output limit its message is dropped.
    pub fn report(&mut self, finding: Finding) {
        if self.findings.len() >= MAX_FINDINGS {
            self.dropped += 1;
            if finding.severity == Severity::Error {
                self.dropped_errors += 1;
            }
            return;
        }
        let check = terminal_safe(&finding.check, 256);
        let mut message = terminal_safe(&finding.message, MAX_LINE);
        // As printed: `\t[WARNING check]: message` (errors at the end of the phase).
        let shown = self.budget.take(check.len() + message.len() + 16);
        if !shown {
            message = "(message dropped: the phase exceeded its output limit)".to_string();
        }
        if shown {
            match finding.severity {
                Severity::Warning => self.console.err(&format!("\t[WARNING {check}]: {message}")),
                Severity::Info => {
                    tracing::info!(phase = %self.phase, check = %check, "{message}")
                }
                Severity::Error => {}
            }
        }
        self.findings.push(Finding {
            check,
            severity: finding.severity,
            message,
        });
    }

    pub fn print(&self, line: &str) {
        let line = terminal_safe(line, MAX_LINE);
        if self.budget.take(line.len() + 1) {
            self.console.out(&line);
        }
    }

    pub fn log(&self, level: tracing::Level, message: &str) {
        let message = terminal_safe(message, MAX_LINE);
        if !self.budget.take(message.len() + 1) {
            return;
        }
        let phase = self.phase.as_str();
        match level {
            tracing::Level::TRACE => tracing::trace!(target: "plugin", phase, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(target: "plugin", phase, "{message}"),
            tracing::Level::INFO => tracing::info!(target: "plugin", phase, "{message}"),
            tracing::Level::WARN => tracing::warn!(target: "plugin", phase, "{message}"),
            tracing::Level::ERROR => tracing::error!(target: "plugin", phase, "{message}"),
        }
    }
}

/// A plugin's WASI stdout or stderr: complete lines go to `tracing` (debug for stdout, warn for
/// stderr) with the phase's name; nothing reaches the terminal directly.
#[derive(Clone)]
pub struct PluginOutput {
    inner: Arc<Mutex<Vec<u8>>>,
    budget: Arc<Budget>,
    phase: Arc<str>,
    stderr: bool,
}

impl PluginOutput {
    pub fn new(phase: &str, budget: Arc<Budget>, stderr: bool) -> Self {
        Self {
            inner: Arc::default(),
            budget,
            phase: phase.into(),
            stderr,
        }
    }

    fn accept(&self, bytes: &[u8]) {
        if !self.budget.take(bytes.len()) {
            return;
        }
        let mut pending = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend_from_slice(bytes);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            self.emit(&line[..line.len() - 1]);
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = terminal_safe(&String::from_utf8_lossy(line), MAX_LINE);
        let phase = &*self.phase;
        if self.stderr {
            tracing::warn!(target: "plugin", phase, stream = "stderr", "{text}");
        } else {
            tracing::debug!(target: "plugin", phase, stream = "stdout", "{text}");
        }
    }

    /// Emits a last line without a newline, if any.
    pub fn finish(&self) {
        let rest: Vec<u8> = std::mem::take(&mut *self.inner.lock().unwrap_or_else(|p| p.into_inner()));
        if !rest.is_empty() {
            self.emit(&rest);
        }
    }
}

impl IsTerminal for PluginOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for PluginOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PluginOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for PluginOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn control_characters_are_made_visible_and_text_is_cut() {
        let forged = "ok\x1b[8m\rdigest: sha256:00\u{9b}2J\u{202e}x\ty";
        assert_eq!(
            terminal_safe(forged, 100),
            "ok\\x1b[8m\\rdigest: sha256:00\\u{9b}2J\\u{202e}x\ty"
        );
        assert_eq!(terminal_safe("a\nb", 100), "a\\nb");
        let long = "x".repeat(1000);
        let cut = terminal_safe(&long, 10);
        assert_eq!(cut, format!("{}... (990 more bytes cut)", "x".repeat(10)));
    }
}
