//! Value types every layer shares, below all of them: the pipeline file parses into them, the
//! grants carry them, the capabilities enforce them. They know nothing of files on disk or of
//! the network.

pub mod node_path;
pub mod url;

pub use node_path::NodePath;
pub use url::{Scheme, Url};
