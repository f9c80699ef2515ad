//! The host capabilities a plugin can use, one module per WIT interface. This is the only place
//! where a grant is checked: each capability holds the phase's grants and refuses what they do not
//! cover, with a message naming the missing grant.

pub mod etcd;
pub mod exec;
pub mod fs;
pub mod health;
pub mod keys;
pub mod kube;
pub mod log;
pub mod path;
pub mod plan;
