//! `plugin replay`: a plugin re-run against a recorded trace (`--record FILE`), with no node and no
//! cluster. Each host call is answered from the trace in order; the first one that differs from
//! the recorded call stops the plugin, and the replay reports it. A replay that matches to the end
//! ends as the recording did: the same findings, outputs and exit code.

use super::single::{self, GrantChoice, Outcome, SingleError, SingleRun};
use crate::bindings::types::{Command as WitCommand, NodeRole};
use crate::caps::log::Console;
use crate::command::{Command, Role};
use crate::config::pipeline::Grants;
use crate::config::settings_error::Source;
use crate::runtime::Runtime;
use crate::runtime::trace::{Recording, Trace, TraceError};
use std::path::PathBuf;
use std::sync::Arc;

/// What to replay.
pub struct Replay {
    pub component: PathBuf,
    pub recording: Arc<Recording>,
    /// The recorded phase to replay; `None` when the trace has only one.
    pub phase: Option<String>,
    /// Settings to try instead of the recorded ones, and the file they were written in.
    pub settings: Option<(serde_json::Value, Source)>,
    pub console: Console,
}

/// What a replay did: the run's outcome (a divergence is its error) and the number of recorded
/// calls of the phase.
pub struct Replayed {
    pub outcome: Outcome,
    pub phase: String,
    pub recorded_calls: usize,
}

/// Runs the plugin against the recording of one phase.
pub fn replay(runtime: &Runtime, replay: Replay) -> Result<Replayed, SingleError> {
    let recording = replay.recording;
    let phase = recording.select(replay.phase.as_deref())?;
    let context = recording.context(&phase).ok_or_else(|| {
        TraceError::Select(format!(
            "the trace {} has no phase {phase:?}",
            recording.path.display()
        ))
    })?;
    let (settings, settings_file) = match replay.settings {
        Some((settings, file)) => (settings, Some(file)),
        None => {
            let recorded = serde_json::from_str(&context.settings).map_err(|e| TraceError::Read {
                path: recording.path.clone(),
                message: format!("the settings recorded for phase {phase} are not JSON: {e}"),
            })?;
            (recorded, None)
        }
    };
    // No node: the plugin sees an empty directory and is granted nothing; every call it makes is
    // answered from the trace before a capability is asked.
    let empty = tempfile::tempdir().map_err(SingleError::Scratch)?;
    let mut outcome = single::run(
        runtime,
        SingleRun {
            component: replay.component,
            root: empty.path().to_path_buf(),
            command: match context.command {
                WitCommand::Init => Command::Init,
                WitCommand::Join => Command::Join,
                WitCommand::Reset => Command::Reset,
            },
            role: match context.role {
                NodeRole::ControlPlane => Role::ControlPlane,
                NodeRole::Worker => Role::Worker,
            },
            config: Default::default(),
            settings,
            settings_file,
            grants: GrantChoice::Given(Grants::default()),
            dry_run: context.dry_run,
            cluster: None,
            console: replay.console,
            trace: Some(Trace::Replay {
                recording: recording.clone(),
                phase: phase.clone(),
            }),
        },
    )?;
    outcome.phase = phase.clone();
    Ok(Replayed {
        recorded_calls: recording.calls(&phase),
        outcome,
        phase,
    })
}
