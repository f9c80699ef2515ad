//! Tools for plugin authors: run one component alone against a node directory ([`single`]),
//! without a pipeline file or a pinned digest, with its results as data; a new plugin crate
//! ([`scaffold`]); building one ([`build`]); re-running one against a recorded trace ([`replay`]).

pub mod build;
pub mod cases;
pub mod replay;
pub mod scaffold;
pub mod single;
