//! The short-lived bootstrap token that owns Secret `kubeadm-certs` (kubeadm's
//! `createShortLivedBootstrapToken`): when the token controller deletes it after two hours, the
//! garbage collector deletes the certificates with it.
//!
//! [`owner_token_secret`] is the one place that shapes a token Secret here, so it can be swapped
//! for the shared bootstrap-token crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use wasmadm_plugin_sdk::apply::{self, resource};
use wasmadm_plugin_sdk::kube::Client;
use wasmadm_plugin_sdk::types::PhaseError;

/// kubeadm's description of the owner token.
pub const DESCRIPTION: &str = "Proxy for managing TTL for the kubeadm-certs secret";
/// kubeadm's `DefaultCertTokenDuration`.
pub const TTL_SECONDS: i64 = 2 * 60 * 60;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `n` random characters of `[a-z0-9]`, uniformly (bytes past the last whole multiple of 36
/// are drawn again).
fn random_chars(n: usize) -> Result<String, PhaseError> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 32];
    while out.len() < n {
        getrandom::fill(&mut buf)
            .map_err(|e| PhaseError::Failed(format!("the system random number generator failed: {e}")))?;
        for b in buf.iter().filter(|b| **b < 252) {
            if out.len() < n {
                out.push(ALPHABET[(*b % 36) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// `now + TTL` in RFC 3339, UTC, whole seconds (Go's `time.RFC3339`).
fn expiration() -> Result<String, PhaseError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| PhaseError::Failed(format!("the system clock is before 1970: {e}")))?;
    let at = time::OffsetDateTime::from_unix_timestamp(now.as_secs() as i64 + TTL_SECONDS)
        .map_err(|e| PhaseError::Failed(format!("cannot compute the token expiration: {e}")))?;
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| PhaseError::Failed(format!("cannot format the token expiration: {e}")))
}

/// The token's Secret: no usages and no extra groups, so it authenticates nobody.
pub fn owner_token_secret(id: &str, secret: &str, expiration: &str) -> Value {
    let b = |s: &str| B64.encode(s);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "data": {
            "description": b(DESCRIPTION),
            "expiration": b(expiration),
            "token-id": b(id),
            "token-secret": b(secret),
        },
    })
}

/// Creates the token and returns the controller ownerReference to it.
pub fn create_owner_token(client: &Client) -> Result<Value, PhaseError> {
    let secret = owner_token_secret(&random_chars(6)?, &random_chars(16)?, &expiration()?);
    let ty = resource("", "v1", "Secret", "secrets", true);
    let stored = client
        .create(&ty, Some("kube-system"), &secret.to_string())
        .map_err(apply::context(
            "error uploading certs: cannot create the owner bootstrap token",
        ))?;
    let stored: Value = serde_json::from_str(&stored)
        .map_err(|e| PhaseError::Failed(format!("the API returned a token Secret that is not JSON: {e}")))?;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "name": stored["metadata"]["name"],
        "uid": stored["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    }))
}
