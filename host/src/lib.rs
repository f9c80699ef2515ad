//! wasmadm: kubeadm's `init`, `join` and `reset`, with every phase a sandboxed WebAssembly
//! component.
//!
//! The [`runtime`] runs the phases a [`config::pipeline`] lists, each in a fresh Wasmtime store
//! holding only the capabilities ([`caps`]) its grants allow: node files under `--root`,
//! allow-listed commands, and the Kubernetes API ([`cluster`]: a real server or an in-memory
//! one). The runner knows nothing of Kubernetes; the plugins know nothing of Wasmtime; the
//! capabilities are where the two meet and the only place a grant is checked.
//!
//! The layers, in order: [`values`] (node paths and URLs, shared by all), [`command`] (what a
//! run is) and [`config`] (the kubeadm configuration and the pipeline file), [`grants`] (pipeline
//! grants to the one shape the capabilities take, [`grants::PhaseGrants`], and back), [`caps`]
//! and [`cluster`] (the in-memory cluster's simulators in [`cluster::simulate`]), [`runtime`];
//! [`invocation`] turns a command's flags into a run and runs it, [`cli`] is the command line
//! over it.

pub mod author;
pub mod bindings;
pub mod builtin;
pub mod caps;
pub mod cli;
pub mod cluster;
pub mod command;
pub mod config;
pub mod deadline;
pub mod facts;
pub mod grants;
pub mod http;
pub mod invocation;
pub mod runtime;
pub mod token;
pub mod util;
pub mod values;
