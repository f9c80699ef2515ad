//! Running plugins: the engine ([`engine`]), the compiled-code cache ([`cache`]), a phase as the runner
//! sees it ([`phase`]), the per-call sandbox ([`sandbox`]), kubeadm's phase-runner semantics
//! ([`runner`]) and record/replay ([`trace`]).

pub mod cache;
pub mod engine;
pub mod phase;
pub mod runner;
pub mod sandbox;
pub mod trace;

pub use engine::{LoadError, LoadedPlugin, Runtime};
pub use phase::{Component, Limits, Phase};
pub use runner::{Command, RunError, RunReport, RunSpec, Runner};
