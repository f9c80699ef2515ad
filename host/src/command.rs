//! What a run is: the kubeadm command it performs and the role of the node it runs on. One model
//! for the command line, the pipeline file, the runner and the contract (`wit/types.wit`, converted
//! at the edge in `runtime::runner`).

use serde::{Deserialize, Serialize};

/// A wasmadm command that runs a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Command {
    Init,
    Join,
    Reset,
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Init => "init",
            Command::Join => "join",
            Command::Reset => "reset",
        })
    }
}

/// A node's role; in a pipeline file, the role a phase is restricted to (`role: worker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ControlPlane,
    Worker,
}
