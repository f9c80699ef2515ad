//! Record and replay: every host call of a phase (capability calls, and the plugin's clock,
//! random and environment reads) as JSON lines, written by `--record FILE` and read back by
//! `plugin replay`, which answers each call from the recording instead of the node and stops the
//! plugin at the first call that differs.
//!
//! A trace holds what the plugin read: file contents (the node's PKI included), command output,
//! API objects and the keys the host generated. It is written with mode 0600.

use crate::bindings::PhaseContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Bytes in a trace: a JSON string when they are UTF-8 (as file contents and command output
/// mostly are), else `{"hex": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => HexBytes {
                hex: hex::encode(&self.0),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Hex(HexBytes),
        }
        match Repr::deserialize(d)? {
            Repr::Text(text) => Ok(Bytes(text.into_bytes())),
            Repr::Hex(h) => hex::decode(&h.hex).map(Bytes).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HexBytes {
    hex: String,
}

/// One line of a trace file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Line {
    /// A phase starts: its plugin and everything it was told.
    Phase {
        phase: String,
        plugin: String,
        digest: String,
        context: PhaseContext,
    },
    /// A host call of the phase, numbered from 1, with its arguments and result.
    Call {
        phase: String,
        call: u64,
        interface: String,
        function: String,
        args: Value,
        result: Value,
    },
    /// The phase's `run` returned (`{"returned": ...}`) or was stopped (`{"trapped": "..."}`).
    End { phase: String, outcome: Value },
}

/// Why a trace could not be written or read, or why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot write the trace {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error(
        "cannot read the trace {path}: {message} (a trace is the JSON-lines file written by `--record FILE`)"
    )]
    Read { path: PathBuf, message: String },
    #[error("{0}")]
    Select(String),
    /// The replayed plugin did something else than the recorded one.
    #[error("the replay of phase {phase} diverged from the recording at call {call}: {message}")]
    Diverged {
        phase: String,
        call: u64,
        message: String,
    },
}

/// What a run does with its host calls: write them to a trace, or answer them from one.
#[derive(Clone)]
pub enum Trace {
    Record(Recorder),
    /// Replays the calls of one recorded phase (whatever the running phase is named).
    Replay {
        recording: Arc<Recording>,
        phase: String,
    },
}

/// The trace file being written, shared by the phases of a run.
#[derive(Clone)]
pub struct Recorder {
    path: PathBuf,
    out: Arc<Mutex<BufWriter<File>>>,
}

impl Recorder {
    /// Creates (or truncates) `path` with mode 0600: a trace holds the node's secrets.
    pub fn create(path: &Path) -> Result<Self, TraceError> {
        let err = |e: std::io::Error| TraceError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(err)?;
        // An existing file keeps its mode on open: narrow it too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
        Ok(Self {
            path: path.to_path_buf(),
            out: Arc::new(Mutex::new(BufWriter::new(file))),
        })
    }

    fn write(&self, line: &Line) -> Result<(), TraceError> {
        let err = |message: String| TraceError::Write {
            path: self.path.clone(),
            message,
        };
        let text = serde_json::to_string(line).map_err(|e| err(e.to_string()))?;
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(out, "{text}").map_err(|e| err(e.to_string()))?;
        if matches!(line, Line::End { .. }) {
            out.flush().map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }
}

/// A trace file, read back.
pub struct Recording {
    pub path: PathBuf,
    lines: Vec<Line>,
}

impl Recording {
    pub fn load(path: &Path) -> Result<Self, TraceError> {
        let err = |message: String| TraceError::Read {
            path: path.to_path_buf(),
            message,
        };
        let file = File::open(path).map_err(|e| err(e.to_string()))?;
        let mut lines = Vec::new();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| err(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            lines.push(serde_json::from_str(&line).map_err(|e| err(format!("line {}: {e}", i + 1)))?);
        }
        Ok(Self {
            path: path.to_path_buf(),
            lines,
        })
    }

    /// The recorded phases, in order.
    pub fn phases(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Phase { phase, .. } => Some(phase.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The phase to replay: `wanted`, or the only one recorded.
    pub fn select(&self, wanted: Option<&str>) -> Result<String, TraceError> {
        let phases = self.phases();
        let listed = || phases.join(", ");
        match wanted {
            Some(name) if phases.contains(&name) => Ok(name.to_string()),
            Some(name) => Err(TraceError::Select(format!(
                "the trace {} has no phase {name:?}; it has: {}",
                self.path.display(),
                listed()
            ))),
            None if phases.len() == 1 => Ok(phases[0].to_string()),
            None if phases.is_empty() => Err(TraceError::Select(format!(
                "the trace {} records no phase",
                self.path.display()
            ))),
            None => Err(TraceError::Select(format!(
                "the trace {} records several phases ({}): choose one with --phase NAME",
                self.path.display(),
                listed()
            ))),
        }
    }

    /// What the phase was told when it was recorded.
    pub fn context(&self, phase: &str) -> Option<&PhaseContext> {
        self.lines.iter().find_map(|l| match l {
            Line::Phase {
                phase: p, context, ..
            } if p == phase => Some(context),
            _ => None,
        })
    }

    /// The number of host calls recorded for `phase`.
    pub fn calls(&self, phase: &str) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l, Line::Call { phase: p, .. } if p == phase))
            .count()
    }
}

/// One recorded call, as the replay expects it.
struct Expected {
    interface: String,
    function: String,
    args: Value,
    result: Value,
}

enum Mode {
    Record(Recorder),
    Replay {
        script: VecDeque<Expected>,
        outcome: Option<Value>,
        diverged: Option<TraceError>,
    },
}

/// What a traced call does next.
pub enum Answer {
    /// Run the call for real (and record its result with [`Tape::result`]).
    Live,
    /// The recorded result (a replay).
    Recorded(Value),
}

/// The trace of one phase, held by its sandbox and consulted by every host call.
pub struct Tape {
    phase: String,
    calls: u64,
    pending: Option<(String, String, Value)>,
    mode: Mode,
}

impl Trace {
    pub fn record(path: &Path) -> Result<Self, TraceError> {
        Recorder::create(path).map(Trace::Record)
    }

    /// The tape of a phase about to run. Recording writes what the phase is told; a replay
    /// tells it what the recorded phase was told, except `settings`, which stay the run's (so a
    /// replay can try other settings).
    pub fn start(
        &self,
        phase: &str,
        plugin: &str,
        digest: &str,
        context: &mut PhaseContext,
    ) -> Result<Tape, TraceError> {
        let (name, mode) = match self {
            Trace::Record(recorder) => {
                recorder.write(&Line::Phase {
                    phase: phase.to_string(),
                    plugin: plugin.to_string(),
                    digest: digest.to_string(),
                    context: context.clone(),
                })?;
                (phase.to_string(), Mode::Record(recorder.clone()))
            }
            // The recorded phase is replayed, whatever the running phase is named.
            Trace::Replay {
                recording,
                phase: recorded_phase,
            } => {
                let phase = recorded_phase;
                let recorded = recording.context(phase).ok_or_else(|| {
                    TraceError::Select(format!(
                        "the trace {} has no phase {phase:?}",
                        recording.path.display()
                    ))
                })?;
                let settings = std::mem::take(&mut context.settings);
                *context = PhaseContext {
                    settings,
                    ..recorded.clone()
                };
                let mut outcome = None;
                let mut script = VecDeque::new();
                for line in &recording.lines {
                    match line {
                        Line::Call {
                            phase: p,
                            interface,
                            function,
                            args,
                            result,
                            ..
                        } if p == phase => script.push_back(Expected {
                            interface: interface.clone(),
                            function: function.clone(),
                            args: args.clone(),
                            result: result.clone(),
                        }),
                        Line::End { phase: p, outcome: o } if p == phase => outcome = Some(o.clone()),
                        _ => {}
                    }
                }
                let mode = Mode::Replay {
                    script,
                    outcome,
                    diverged: None,
                };
                (phase.clone(), mode)
            }
        };
        Ok(Tape {
            phase: name,
            calls: 0,
            pending: None,
            mode,
        })
    }
}

impl Tape {
    /// True when calls are answered from a recording.
    pub fn replaying(&self) -> bool {
        matches!(self.mode, Mode::Replay { .. })
    }

    /// A host call begins. Recording: remember it until [`Tape::result`]. Replay: the recorded
    /// result, or the divergence (as the error that stops the plugin).
    pub fn call(&mut self, interface: &str, function: &str, args: Value) -> wasmtime::Result<Answer> {
        self.calls += 1;
        let call = self.calls;
        match &mut self.mode {
            Mode::Record(_) => {
                self.pending = Some((interface.to_string(), function.to_string(), args));
                Ok(Answer::Live)
            }
            Mode::Replay { script, diverged, .. } => {
                if let Some(d) = diverged {
                    return Err(wasmtime::Error::msg(d.to_string()));
                }
                let message = match script.pop_front() {
                    None => Some(format!(
                        "the plugin calls {interface}.{function} {}, but the recording ends after \
                         call {}",
                        brief(&args),
                        call - 1
                    )),
                    Some(e) if e.interface != interface || e.function != function => Some(format!(
                        "expected {}.{} {}, got {interface}.{function} {}",
                        e.interface,
                        e.function,
                        brief(&e.args),
                        brief(&args)
                    )),
                    Some(e) if e.args != args => Some(format!(
                        "{interface}.{function}: {}",
                        differing_args(&e.args, &args)
                    )),
                    Some(e) => return Ok(Answer::Recorded(e.result)),
                };
                let d = TraceError::Diverged {
                    phase: self.phase.clone(),
                    call,
                    message: message.unwrap_or_default(),
                };
                let text = d.to_string();
                *diverged = Some(d);
                Err(wasmtime::Error::msg(text))
            }
        }
    }

    /// The live result of the call begun last (recording only; a replay ignores it).
    pub fn result(&mut self, result: Value) -> wasmtime::Result<()> {
        let (Mode::Record(recorder), Some((interface, function, args))) = (&self.mode, self.pending.take())
        else {
            return Ok(());
        };
        recorder
            .write(&Line::Call {
                phase: self.phase.clone(),
                call: self.calls,
                interface,
                function,
                args,
                result,
            })
            .map_err(|e| wasmtime::Error::msg(e.to_string()))
    }

    /// The phase's `run` is over: record its outcome, or check the replay used every recorded
    /// call and ended as the recording did.
    pub fn finish(&mut self, outcome: Value) -> Result<(), TraceError> {
        match &mut self.mode {
            Mode::Record(recorder) => recorder.write(&Line::End {
                phase: self.phase.clone(),
                outcome,
            }),
            Mode::Replay {
                script,
                outcome: recorded,
                diverged,
            } => {
                if let Some(d) = diverged.take() {
                    return Err(d);
                }
                let diverged = |call: u64, message: String| TraceError::Diverged {
                    phase: self.phase.clone(),
                    call,
                    message,
                };
                if let Some(next) = script.front() {
                    return Err(diverged(
                        self.calls + 1,
                        format!(
                            "the plugin ended after {} calls with {}, but the recording continues \
                             with {}.{} {}",
                            self.calls,
                            brief(&outcome),
                            next.interface,
                            next.function,
                            brief(&next.args)
                        ),
                    ));
                }
                match recorded {
                    Some(recorded) if *recorded != outcome => Err(diverged(
                        self.calls,
                        format!(
                            "every call matched, but the plugin ended with {}, the recording with {}",
                            brief(&outcome),
                            brief(recorded)
                        ),
                    )),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// A value for a message: its JSON, cut at a few hundred characters.
fn brief(v: &Value) -> String {
    const MAX: usize = 300;
    let text = v.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text,
    }
}

/// Which argument differs, with the recorded and the actual value.
fn differing_args(expected: &Value, actual: &Value) -> String {
    if let (Value::Object(e), Value::Object(a)) = (expected, actual)
        && let Some(key) = e
            .keys()
            .chain(a.keys())
            .find(|k| e.get(k.as_str()) != a.get(k.as_str()))
    {
        let show = |v: Option<&Value>| v.map_or_else(|| "nothing".to_string(), brief);
        return format!(
            "argument `{key}`: expected {}, got {}",
            show(e.get(key.as_str())),
            show(a.get(key.as_str()))
        );
    }
    format!("expected arguments {}, got {}", brief(expected), brief(actual))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(settings: &str) -> PhaseContext {
        PhaseContext {
            command: crate::bindings::types::Command::Init,
            phase: "check".into(),
            sub_phases: vec![],
            role: crate::bindings::types::NodeRole::ControlPlane,
            dry_run: false,
            config: "{}".into(),
            settings: settings.into(),
            inputs: vec![("node.hostname".into(), "node-1".into())],
        }
    }

    /// A trace of phase `check`: two reads, then `run` returned `ok`.
    fn recorded(dir: &Path) -> Arc<Recording> {
        let path = dir.join("trace");
        let trace = Trace::record(&path).expect("create");
        let mut tape = trace
            .start("check", "vendor.wasm", "abc", &mut context("{\"a\":1}"))
            .expect("start");
        for file in ["/etc/a", "/etc/b"] {
            assert!(matches!(
                tape.call("files", "read", json!({"path": file})),
                Ok(Answer::Live)
            ));
            tape.result(json!({"Ok": file})).expect("result");
        }
        tape.finish(json!("ok")).expect("finish");
        drop((tape, trace));
        Arc::new(Recording::load(&path).expect("load"))
    }

    fn replay(recording: &Arc<Recording>, settings: &str) -> (Tape, PhaseContext) {
        let trace = Trace::Replay {
            recording: recording.clone(),
            phase: "check".into(),
        };
        let mut context = context(settings);
        context.inputs.clear();
        let tape = trace
            .start("other-name", "x.wasm", "def", &mut context)
            .expect("start");
        (tape, context)
    }

    #[test]
    fn a_replay_gets_the_recorded_context_and_answers_but_keeps_its_settings() {
        let dir = tempfile::tempdir().expect("tmp");
        let recording = recorded(dir.path());
        assert_eq!(recording.phases(), ["check"]);
        assert_eq!(recording.calls("check"), 2);
        let (mut tape, context) = replay(&recording, "{\"a\":2}");
        assert_eq!(
            context.inputs,
            [("node.hostname".to_string(), "node-1".to_string())]
        );
        assert_eq!(context.settings, "{\"a\":2}");
        for file in ["/etc/a", "/etc/b"] {
            match tape.call("files", "read", json!({"path": file})) {
                Ok(Answer::Recorded(v)) => assert_eq!(v, json!({"Ok": file})),
                _ => panic!("{file} was not answered from the trace"),
            }
        }
        tape.finish(json!("ok")).expect("the replay matched");
    }

    #[test]
    fn a_replay_that_stops_early_or_ends_otherwise_diverges() {
        let dir = tempfile::tempdir().expect("tmp");
        let recording = recorded(dir.path());
        let (mut tape, _) = replay(&recording, "null");
        assert!(tape.call("files", "read", json!({"path": "/etc/a"})).is_ok());
        let early = tape.finish(json!("failed")).expect_err("diverged").to_string();
        assert!(
            early.ends_with(
                r#"at call 2: the plugin ended after 1 calls with "failed", but the recording continues with files.read {"path":"/etc/b"}"#
            ),
            "{early}"
        );

        let (mut tape, _) = replay(&recording, "null");
        for file in ["/etc/a", "/etc/b"] {
            assert!(tape.call("files", "read", json!({"path": file})).is_ok());
        }
        let end = tape.finish(json!("failed")).expect_err("diverged").to_string();
        assert!(
            end.ends_with(r#"at call 2: every call matched, but the plugin ended with "failed", the recording with "ok""#),
            "{end}"
        );

        // A call past the recording's end stops the plugin, and so does every later one.
        let (mut tape, _) = replay(&recording, "null");
        for file in ["/etc/a", "/etc/b"] {
            assert!(tape.call("files", "read", json!({"path": file})).is_ok());
        }
        let past = tape
            .call("files", "stat", json!({"path": "/etc/c"}))
            .err()
            .expect("diverged");
        assert!(
            past.to_string().contains("but the recording ends after call 2"),
            "{past}"
        );
        assert!(tape.call("log", "print", json!({"line": "x"})).is_err());
        assert!(tape.finish(json!("ok")).is_err());
    }

    #[test]
    fn bytes_are_text_when_they_are_utf8_and_hex_else() {
        for (bytes, json) in [
            (b"MemTotal: 1000 kB\n".to_vec(), json!("MemTotal: 1000 kB\n")),
            (vec![0xff, 0x00, 0x41], json!({"hex": "ff0041"})),
        ] {
            assert_eq!(
                serde_json::to_value(Bytes(bytes.clone())).expect("serialize"),
                json
            );
            assert_eq!(
                serde_json::from_value::<Bytes>(json).expect("deserialize"),
                Bytes(bytes)
            );
        }
    }

    #[test]
    fn the_first_differing_argument_is_named_with_both_values() {
        let got = differing_args(
            &json!({"path": "/etc/a", "mode": 420}),
            &json!({"path": "/etc/b", "mode": 420}),
        );
        assert_eq!(got, r#"argument `path`: expected "/etc/a", got "/etc/b""#);
    }

    #[test]
    fn a_long_value_is_cut_in_messages() {
        let long = Value::String("x".repeat(1000));
        let text = brief(&long);
        assert!(text.len() < 400, "{text}");
        assert!(text.ends_with("(1002 bytes)"), "{text}");
    }
}
