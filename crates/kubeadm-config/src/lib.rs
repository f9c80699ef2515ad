//! kubeadm's `kubeadm.k8s.io/v1beta4` configuration: types, defaults and validation.
//!
//! One crate for both sides of the sandbox: the wasmadm host parses and validates the user's
//! file with it, and plugins read the resolved configuration they are given with the same types,
//! so a field means the same thing everywhere.
//!
//! ```
//! use kubeadm_config::{defaults, validate, InitConfiguration};
//! let mut init = InitConfiguration::default();
//! defaults::init_configuration(&mut init, "node-1");
//! assert_eq!(init.local_api_endpoint.bind_port, 6443);
//! assert!(validate::init_configuration(&init).is_empty());
//! ```

pub mod defaults;
mod endpoint;
pub mod kubelet;
mod types;
pub mod upload;
pub mod validate;
pub mod yaml;

pub use endpoint::{control_plane_url, join_host_port};
pub use types::*;
