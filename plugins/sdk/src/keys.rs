//! Private keys for a phase that makes several: asked of the host in one call (the `keys`
//! interface: native code, every core), made in the plugin when the pipeline does not grant it.
//!
//! ```no_run
//! use wasmadm_plugin_sdk::keys::Keys;
//! use kubeadm_pki::KeyAlgorithm;
//! # fn run() -> Result<(), wasmadm_plugin_sdk::types::PhaseError> {
//! let mut keys = Keys::new(KeyAlgorithm::Rsa2048);
//! keys.prefetch(3)?; // one host call for the three keys below
//! for _ in 0..3 {
//!     let key = keys.new_key()?;
//!     // ... sign a certificate for `key.public_key()`, write `key.to_pem()`
//! #   let _ = key;
//! }
//! # Ok(()) }
//! ```

use crate::bindings::wasmadm::plugin::keys::{self as host, Algorithm, KeyError};
use crate::types::PhaseError;
use kubeadm_pki::{KeyAlgorithm, PrivateKey};

/// A source of new keys of one algorithm (see the module's example).
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// let mut keys = wasmadm_plugin_sdk::keys::Keys::new(kubeadm_pki::KeyAlgorithm::EcdsaP256);
/// let sa_key = keys.new_key()?;
/// # let _ = sa_key; Ok(()) }
/// ```
pub struct Keys {
    algorithm: KeyAlgorithm,
    ready: Vec<PrivateKey>,
}

impl Keys {
    /// A source with no key fetched yet.
    ///
    /// ```
    /// let keys = wasmadm_plugin_sdk::keys::Keys::new(kubeadm_pki::KeyAlgorithm::Rsa2048);
    /// # let _ = keys;
    /// ```
    pub fn new(algorithm: KeyAlgorithm) -> Self {
        Self {
            algorithm,
            ready: Vec::new(),
        }
    }

    /// Asks the host for `count` keys at once. When the pipeline grants no (or too few) keys,
    /// nothing is fetched and [`Keys::new_key`] makes each key in the plugin instead.
    ///
    /// ```no_run
    /// # fn f() -> wasmadm_plugin_sdk::Result {
    /// let mut keys = wasmadm_plugin_sdk::keys::Keys::new(kubeadm_pki::KeyAlgorithm::Rsa2048);
    /// keys.prefetch(10)?; // the CA, the API server, the kubelet client, ...: one host call
    /// # Ok(()) }
    /// ```
    pub fn prefetch(&mut self, count: usize) -> Result<(), PhaseError> {
        // The host takes at most 64 per call; keys beyond that are made here by `new_key`.
        let count = count.min(64) as u32;
        if count == 0 {
            return Ok(());
        }
        match host::generate(algorithm(self.algorithm), count) {
            Ok(pems) => {
                for pem in pems {
                    let key = PrivateKey::from_pem(pem.as_bytes())
                        .map_err(|e| PhaseError::Failed(format!("the host's key cannot be used: {e}")))?;
                    self.ready.push(key);
                }
                Ok(())
            }
            Err(KeyError::Denied(reason)) => {
                crate::debug(&format!("making keys in the plugin: {reason}"));
                Ok(())
            }
            Err(KeyError::Failed(reason)) => Err(PhaseError::Failed(reason)),
        }
    }

    /// A new key: a prefetched one, else one made here.
    ///
    /// ```no_run
    /// # fn f() -> wasmadm_plugin_sdk::Result {
    /// let mut keys = wasmadm_plugin_sdk::keys::Keys::new(kubeadm_pki::KeyAlgorithm::EcdsaP256);
    /// let key = keys.new_key()?;
    /// let pem = key.to_pem();
    /// # let _ = pem; Ok(()) }
    /// ```
    pub fn new_key(&mut self) -> Result<PrivateKey, PhaseError> {
        match self.ready.pop() {
            Some(key) => Ok(key),
            None => PrivateKey::generate(self.algorithm).map_err(|e| PhaseError::Failed(e.to_string())),
        }
    }
}

fn algorithm(algorithm: KeyAlgorithm) -> Algorithm {
    match algorithm {
        KeyAlgorithm::Rsa2048 => Algorithm::Rsa2048,
        KeyAlgorithm::Rsa3072 => Algorithm::Rsa3072,
        KeyAlgorithm::Rsa4096 => Algorithm::Rsa4096,
        KeyAlgorithm::EcdsaP256 => Algorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384 => Algorithm::EcdsaP384,
    }
}
