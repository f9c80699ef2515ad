//! The `keys` capability: private keys generated natively, on as many threads as the machine has
//! cores, up to the number the phase's grant (`grants.keys`) allows per run.
//!
//! The call waits for the keys within the phase's deadline ([`crate::deadline`]); the worker
//! threads are detached, so a call that runs out of time returns at once and the workers stop
//! after the key each is making.

use crate::bindings::wasmadm::plugin::keys::{Algorithm, KeyError};
use kubeadm_pki::{KeyAlgorithm, PrivateKey};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The most keys one call may ask for.
pub const MAX_PER_CALL: u32 = 64;

/// A phase's key budget.
pub struct KeysCap {
    phase: String,
    granted: u32,
    left: u32,
}

impl KeysCap {
    pub fn new(phase: &str, granted: u32) -> Self {
        Self {
            phase: phase.to_string(),
            granted,
            left: granted,
        }
    }

    /// `count` new keys as PEM in kubeadm's formats, or why not.
    pub fn generate(&mut self, algorithm: Algorithm, count: u32) -> Result<Vec<String>, KeyError> {
        if count > MAX_PER_CALL {
            return Err(KeyError::Failed(format!(
                "keys: phase {:?} asked for {count} keys in one call; at most {MAX_PER_CALL} per call",
                self.phase
            )));
        }
        if count > self.left {
            return Err(KeyError::Denied(format!(
                "keys: phase {:?} asked the host for {count} private keys, but its grant has {} of {} left \
                 (`grants.keys: {}` in the pipeline); raise `grants.keys`, or let the plugin make its keys itself",
                self.phase, self.left, self.granted, self.granted
            )));
        }
        self.left -= count;
        let started = std::time::Instant::now();
        let algorithm = algorithm_of(algorithm);
        let keys = generate_parallel(algorithm, count)?;
        tracing::debug!(
            "keys: made {count} {algorithm} keys for phase {:?} in {} ms",
            self.phase,
            started.elapsed().as_millis()
        );
        Ok(keys)
    }
}

fn algorithm_of(algorithm: Algorithm) -> KeyAlgorithm {
    match algorithm {
        Algorithm::Rsa2048 => KeyAlgorithm::Rsa2048,
        Algorithm::Rsa3072 => KeyAlgorithm::Rsa3072,
        Algorithm::Rsa4096 => KeyAlgorithm::Rsa4096,
        Algorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
        Algorithm::EcdsaP384 => KeyAlgorithm::EcdsaP384,
    }
}

/// Makes `count` keys on up to one thread per core and waits for them until the call's deadline.
fn generate_parallel(algorithm: KeyAlgorithm, count: u32) -> Result<Vec<String>, KeyError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count as usize);
    let next = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (sender, receiver) = mpsc::channel();
    for _ in 0..workers {
        let (next, stop, sender) = (next.clone(), stop.clone(), sender.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && next.fetch_add(1, Ordering::Relaxed) < count {
                let key = PrivateKey::generate(algorithm).and_then(|k| k.to_pem());
                if sender.send(key).is_err() {
                    return; // the call gave up
                }
            }
        });
    }
    drop(sender);
    let mut keys = Vec::with_capacity(count as usize);
    while keys.len() < count as usize {
        // A week stands for "no deadline" (a call outside a phase, as in unit tests).
        let wait = crate::deadline::bound(Duration::from_secs(7 * 24 * 3600));
        match receiver.recv_timeout(wait) {
            Ok(Ok(pem)) => keys.push(pem),
            Ok(Err(e)) => {
                stop.store(true, Ordering::Relaxed);
                return Err(KeyError::Failed(format!(
                    "keys: cannot make a {algorithm} key: {e}"
                )));
            }
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                return Err(KeyError::Failed(format!(
                    "keys: {} of {count} {algorithm} keys made when the phase's timeout ran out; \
                     raise the phase's `limits.timeout` in the pipeline",
                    keys.len()
                )));
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn keys_come_within_the_grant_then_are_denied() {
        let mut cap = KeysCap::new("certs", 3);
        let keys = cap.generate(Algorithm::EcdsaP256, 2).expect("two keys");
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1]);
        for pem in &keys {
            assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"), "{pem}");
            PrivateKey::from_pem(pem.as_bytes()).expect("parses");
        }
        match cap.generate(Algorithm::EcdsaP256, 2) {
            Err(KeyError::Denied(m)) => {
                assert!(m.contains("1 of 3 left") && m.contains("grants.keys: 3"), "{m}")
            }
            other => panic!("expected a denial, got {:?}", other.map(|k| k.len())),
        }
        assert_eq!(
            cap.generate(Algorithm::EcdsaP256, 1).expect("the last one").len(),
            1
        );
        assert!(matches!(
            KeysCap::new("x", 100).generate(Algorithm::EcdsaP256, 65),
            Err(KeyError::Failed(_))
        ));
    }

    #[test]
    fn rsa_keys_are_kubeadms_pkcs1_pem() {
        let keys = KeysCap::new("kubeconfig", 2)
            .generate(Algorithm::Rsa2048, 2)
            .expect("keys");
        for pem in keys {
            assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
            assert_eq!(
                PrivateKey::from_pem(pem.as_bytes())
                    .expect("parses")
                    .description(),
                "RSA-2048"
            );
        }
    }

    #[test]
    fn a_call_ends_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(200);
        let result = crate::deadline::scope(deadline, || {
            KeysCap::new("certs", 64).generate(Algorithm::Rsa4096, 64)
        });
        assert!(
            Instant::now() < deadline + Duration::from_secs(1),
            "returned long after the deadline"
        );
        match result {
            Err(KeyError::Failed(m)) => assert!(m.contains("timeout ran out"), "{m}"),
            other => panic!("expected a timeout, got {:?}", other.map(|k| k.len())),
        }
    }
}
