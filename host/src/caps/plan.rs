//! The dry-run plan: every write, mutating command and API mutation a run would have made.

use std::sync::{Arc, Mutex};

/// One effect that `--dry-run` recorded instead of performing.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanEntry {
    WriteFile {
        phase: String,
        path: String,
        mode: u32,
        contents: Vec<u8>,
    },
    CreateDir {
        phase: String,
        path: String,
        mode: u32,
    },
    Remove {
        phase: String,
        path: String,
        recursive: bool,
    },
    Exec {
        phase: String,
        command: String,
    },
    /// A health check (`health.get`) that was not sent.
    Health {
        phase: String,
        url: String,
    },
    /// An etcd membership change (`etcd.member-add-learner`, `-promote`, `-remove`) not sent.
    Etcd {
        phase: String,
        /// What would be done, e.g. `promote learner member 8ac1f4b1c2d3e4f5`.
        action: String,
        endpoint: String,
    },
    Api {
        phase: String,
        verb: String,
        resource: String,
        namespace: Option<String>,
        name: String,
    },
}

impl std::fmt::Display for PlanEntry {
    /// kubeadm's `[dryrun]` wording, so operators recognise it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanEntry::WriteFile {
                path, mode, contents, ..
            } => write!(
                f,
                "[dryrun] Would write file {path:?} with mode {mode:04o} ({} bytes)",
                contents.len()
            ),
            PlanEntry::CreateDir { path, mode, .. } => {
                write!(f, "[dryrun] Would create directory {path:?} with mode {mode:04o}")
            }
            PlanEntry::Remove { path, recursive, .. } => write!(
                f,
                "[dryrun] Would remove {path:?}{}",
                if *recursive { " and everything in it" } else { "" }
            ),
            PlanEntry::Exec { command, .. } => write!(f, "[dryrun] Would run command {command:?}"),
            PlanEntry::Health { url, .. } => write!(f, "[dryrun] Would make sure {url} returns 'ok'"),
            PlanEntry::Etcd { action, endpoint, .. } => {
                write!(f, "[dryrun] Would {action} (etcd at {endpoint})")
            }
            PlanEntry::Api {
                verb,
                resource,
                namespace,
                name,
                ..
            } => {
                write!(
                    f,
                    "[dryrun] Would perform action {} on resource {resource:?}",
                    verb.to_uppercase()
                )?;
                if let Some(ns) = namespace {
                    write!(f, " in namespace {ns:?}")?;
                }
                write!(f, " named {name:?}")
            }
        }
    }
}

/// A shared, append-only list of [`PlanEntry`].
#[derive(Debug, Clone, Default)]
pub struct Plan(Arc<Mutex<Vec<PlanEntry>>>);

impl Plan {
    pub fn record(&self, entry: PlanEntry) {
        tracing::debug!("{entry}");
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
    }

    pub fn entries(&self) -> Vec<PlanEntry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
