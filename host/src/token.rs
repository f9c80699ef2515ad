//! `wasmadm token`: bootstrap tokens on the cluster the host talks to (the same backends as the
//! phases: a real API server or the in-memory cluster), as kubeadm's `token` commands.
//!
//! As in kubeadm, only the token Secret is written: the cluster-info signatures are the
//! controller-manager's bootstrap signer's (simulated by the in-memory cluster).

use crate::cluster::{ApiError, ApiErrorCode, Cluster, ResourceType};
use kubeadm_bootstrap_token::join::{ControlPlane, JoinCommand, ca_pins, endpoint_of};
use kubeadm_bootstrap_token::{SECRET_NAMESPACE, SECRET_TYPE, Token, TokenSpec, clock, cluster_info};
use serde_json::{Value, json};

/// A failed token command.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Token(#[from] kubeadm_bootstrap_token::Error),
    #[error("{0}")]
    Api(String),
}

fn api(what: String) -> impl FnOnce(ApiError) -> TokenError {
    move |e| TokenError::Api(format!("{what}: {}", e.message))
}

fn secrets() -> ResourceType {
    ResourceType::v1("", "Secret", "secrets", true)
}

/// What `token create` was asked for.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// The token to create; generated when `None`.
    pub token: Option<String>,
    /// A Go duration; `0` for a token that never expires.
    pub ttl: String,
    pub description: String,
    pub usages: Vec<String>,
    pub groups: Vec<String>,
}

/// Creates a token Secret (an existing token with the same ID is an error, as in kubeadm).
pub fn create(cluster: &dyn Cluster, opts: &CreateOptions, now: i64) -> Result<TokenSpec, TokenError> {
    let token = match &opts.token {
        Some(t) => Token::parse(t)?,
        None => Token::generate()?,
    };
    let spec = TokenSpec::new(
        token,
        &opts.description,
        Some(&opts.ttl),
        None,
        &opts.usages,
        &opts.groups,
        now,
    )?;
    match cluster.create(
        secrets().collection(Some(SECRET_NAMESPACE)),
        spec.to_secret(),
        false,
    ) {
        Err(e) if e.code == ApiErrorCode::AlreadyExists => {
            return Err(TokenError::Api(format!(
                "a token with id {:?} already exists; delete it first or choose another token",
                spec.token.id
            )));
        }
        other => other.map_err(api(format!(
            "failed to create bootstrap token {:?}",
            spec.token.id
        )))?,
    };
    Ok(spec)
}

/// Every token Secret in kube-system, parsed; malformed ones are returned as messages.
pub fn list(cluster: &dyn Cluster) -> Result<(Vec<TokenSpec>, Vec<String>), TokenError> {
    let list = cluster
        .list(secrets().collection(Some(SECRET_NAMESPACE)), None)
        .map_err(api("failed to list bootstrap tokens".into()))?;
    let mut tokens = Vec::new();
    let mut problems = Vec::new();
    for item in list["items"].as_array().into_iter().flatten() {
        if item["type"].as_str() != Some(SECRET_TYPE) {
            continue;
        }
        match TokenSpec::from_secret(item) {
            Ok(t) => tokens.push(t),
            Err(e) => problems.push(e.to_string()),
        }
    }
    Ok((tokens, problems))
}

/// Deletes the token named by an ID or a whole token; returns the ID.
pub fn delete(cluster: &dyn Cluster, id_or_token: &str) -> Result<String, TokenError> {
    let id = kubeadm_bootstrap_token::parse_id_or_token(id_or_token)?;
    let name = format!("{}{id}", kubeadm_bootstrap_token::SECRET_PREFIX);
    cluster
        .delete(secrets().collection(Some(SECRET_NAMESPACE)), &name, false)
        .map_err(api(format!("failed to delete bootstrap token {id:?}")))?;
    Ok(id)
}

/// kubeadm's `token list` table (tabwriter: minimum width 10, padding 3). `now_millis` in
/// milliseconds, so that a fresh 24h token shows `23h` as in kubeadm.
pub fn table(tokens: &[TokenSpec], now_millis: i64) -> String {
    let none = |s: String| if s.is_empty() { "<none>".to_string() } else { s };
    let mut rows =
        vec![["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"].map(String::from)];
    for t in tokens {
        let (ttl, expires) = match t.expires {
            Some(e) => (
                clock::short_human_duration((e * 1000 - now_millis) / 1000),
                clock::format_rfc3339(e),
            ),
            None => ("<forever>".into(), "<never>".into()),
        };
        rows.push([
            t.token.to_string(),
            ttl,
            expires,
            none(t.usages.join(",")),
            none(t.description.clone()),
            none(t.groups.join(",")),
        ]);
    }
    let width = |c: usize| {
        rows.iter()
            .map(|r| r[c].chars().count() + 3)
            .max()
            .unwrap_or(0)
            .max(10)
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    let mut out = String::new();
    for row in &rows {
        for (cell, w) in row.iter().zip(&widths) {
            out.push_str(&format!("{cell:<w$}"));
        }
        out.push_str(&row[5]);
        out.push('\n');
    }
    out
}

/// A token as kubeadm's `-o json|yaml` prints it (`output.kubeadm.k8s.io/v1alpha3`).
pub fn output_object(t: &TokenSpec) -> Value {
    let mut v = json!({
        "kind": "BootstrapToken",
        "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
        "token": t.token.to_string(),
    });
    if !t.description.is_empty() {
        v["description"] = t.description.clone().into();
    }
    if let Some(e) = t.expires {
        v["expires"] = clock::format_rfc3339(e).into();
    }
    if !t.usages.is_empty() {
        v["usages"] = t.usages.clone().into();
    }
    if !t.groups.is_empty() {
        v["groups"] = t.groups.clone().into();
    }
    v
}

/// The one-line join command for `token`, from an admin kubeconfig's server and CA; with a
/// certificate key, the control-plane variant.
pub fn join_command(
    kubeconfig: &str,
    token: &Token,
    certificate_key: Option<&str>,
) -> Result<String, TokenError> {
    let (server, ca) = cluster_info::kubeconfig_cluster(kubeconfig)?;
    Ok(JoinCommand {
        endpoint: endpoint_of(&server),
        token: token.to_string(),
        ca_pins: ca_pins(&ca)?,
        control_plane: certificate_key.map(|k| ControlPlane {
            certificate_key: Some(k.to_string()),
        }),
    }
    .one_line())
}
