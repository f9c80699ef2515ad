//! Value types every layer shares, below all of them: the pipeline file parses into them, the
//! grants carry them, the capabilities enforce them. They know nothing of files on disk or of
//! the network.

pub mod node_path;
pub mod url;

pub use node_path::NodePath;
pub use url::{Scheme, Url};

/// The largest memory limit a phase may ask for: the engine's pooling allocator reserves this much
/// address space per slot, and the pipeline file is checked against it.
pub const MAX_MEMORY: u64 = 4 << 30;
