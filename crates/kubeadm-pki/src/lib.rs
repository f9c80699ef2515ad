//! kubeadm's PKI in pure Rust: key generation (RSA via `rsa`, ECDSA via `p256`/`p384`),
//! certificates built with `rcgen` and signed by the RustCrypto crates, PEM in kubeadm's
//! formats, and the checks kubeadm makes before reusing files already on disk.
//!
//! No C code: the same crate builds natively (host, tests) and for `wasm32-wasip2` (the `certs`
//! plugin), where randomness comes from WASI. rcgen is used without its `ring`/`aws-lc`
//! backends, which is why signing goes through [`key::PrivateKey::sign`].
//!
//! [`kubeadm`] holds the certificate table of `kubeadm init phase certs` and the SAN rules.

pub mod cert;
pub mod key;
pub mod kubeadm;
pub mod rng;

pub use cert::{CertSpec, Certificate, Usage};
pub use key::{KeyAlgorithm, PrivateKey, PublicKey};

/// Everything that can go wrong in this crate. Messages are the part after "because":
/// callers add which file or certificate was concerned.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("unsupported encryption algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    #[error("invalid private key: {0}")]
    Key(String),
    #[error("{0}")]
    Pem(String),
    #[error("invalid certificate: {0}")]
    Certificate(String),
    #[error("cannot encode: {0}")]
    Encoding(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("invalid name {0}")]
    InvalidName(String),
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    NotYetValid(String),
    #[error("{0}")]
    Verification(String),
}
