//! Running plugins: the engine ([`engine`]), the compiled-code cache ([`cache`]), a phase as the runner
//! sees it ([`phase`]), the per-call sandbox
//! ([`sandbox`]) and kubeadm's phase-runner semantics ([`runner`]).

pub mod cache;
pub mod engine;
pub mod phase;
pub mod runner;
pub mod sandbox;

pub use engine::{LoadError, LoadedPlugin, Runtime};
pub use phase::{Component, Limits, Phase};
pub use runner::{Command, RunError, RunReport, RunSpec, Runner};
