//! The short-lived bootstrap token that owns Secret `kubeadm-certs` (kubeadm's
//! `createShortLivedBootstrapToken`): when the token controller deletes it after two hours, the
//! garbage collector deletes the certificates with it.

use kubeadm_bootstrap_token::{SECRET_NAMESPACE, Token, TokenSpec, clock};
use serde_json::{Value, json};
use wasmadm_plugin_sdk::apply::{self, resource};
use wasmadm_plugin_sdk::kube::Client;
use wasmadm_plugin_sdk::types::PhaseError;

/// kubeadm's description of the owner token.
pub const DESCRIPTION: &str = "Proxy for managing TTL for the kubeadm-certs secret";
/// kubeadm's `DefaultCertTokenDuration`.
pub const TTL: &str = "2h";

/// The token's Secret: no usages and no extra groups, so it authenticates nobody.
pub fn owner_token_secret(now: i64) -> Result<Value, PhaseError> {
    let failed =
        |e: kubeadm_bootstrap_token::Error| PhaseError::Failed(format!("cannot make the owner token: {e}"));
    let token = Token::generate().map_err(failed)?;
    let spec = TokenSpec::new(token, DESCRIPTION, Some(TTL), None, &[], &[], now).map_err(failed)?;
    Ok(spec.to_secret())
}

/// Creates the token and returns the controller ownerReference to it.
pub fn create_owner_token(client: &Client) -> Result<Value, PhaseError> {
    let secret = owner_token_secret(clock::now())?;
    let ty = resource("", "v1", "Secret", "secrets", true);
    let stored = client
        .create(&ty, Some(SECRET_NAMESPACE), &secret.to_string())
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
