//! Create-or-update of API objects, idempotent: an object that already has every field the
//! plugin wants is left alone (no write, its `resourceVersion` unchanged), so a second run
//! changes nothing.

use crate::kube::{self, Client, ErrorCode, ResourceType};
use crate::types::PhaseError;
use serde_json::Value;

/// What [`create_or_update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
}

/// A resource type by its parts.
pub fn resource(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
    }
}

pub fn config_maps() -> ResourceType {
    resource("", "v1", "ConfigMap", "configmaps", true)
}

pub fn roles() -> ResourceType {
    resource("rbac.authorization.k8s.io", "v1", "Role", "roles", true)
}

pub fn role_bindings() -> ResourceType {
    resource(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    )
}

pub fn nodes() -> ResourceType {
    resource("", "v1", "Node", "nodes", false)
}

/// The run's cluster, limited to the phase's grants.
pub fn cluster() -> Result<Client, PhaseError> {
    kube::cluster().map_err(|e| api_error("connecting to the cluster", e))
}

/// An API failure as a phase error that says what was being done.
pub fn api_error(doing: &str, e: kube::ApiError) -> PhaseError {
    match e.code {
        ErrorCode::Denied => PhaseError::Denied(e.message),
        _ => PhaseError::Failed(format!("{doing}: {}", e.message)),
    }
}

/// Parses an object the API returned.
pub fn parse(json: &str) -> Result<Value, PhaseError> {
    serde_json::from_str(json).map_err(|e| PhaseError::Failed(format!("the API returned invalid JSON: {e}")))
}

/// True when every field of `want` is in `have` with the same value (objects compared field by
/// field, everything else exactly).
pub fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => {
            w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v)))
        }
        (h, w) => h == w,
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Creates `object` (with `metadata.name`), or updates the stored one so that it has every field
/// of `object` (other fields, such as other ConfigMap keys, are kept), or leaves it alone.
pub fn create_or_update(
    client: &Client,
    ty: &ResourceType,
    namespace: Option<&str>,
    object: &Value,
) -> Result<Applied, PhaseError> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let what = format!("{} {name:?}", ty.kind);
    match client.get(ty, namespace, name) {
        Err(e) if e.code == ErrorCode::NotFound => {
            client
                .create(ty, namespace, &object.to_string())
                .map_err(|e| api_error(&format!("creating {what}"), e))?;
            Ok(Applied::Created)
        }
        Err(e) => Err(api_error(&format!("reading {what}"), e)),
        Ok(json) => {
            let stored = parse(&json)?;
            if contains(&stored, object) {
                return Ok(Applied::Unchanged);
            }
            let mut updated = stored;
            merge(&mut updated, object);
            client
                .update(ty, namespace, &updated.to_string())
                .map_err(|e| api_error(&format!("updating {what}"), e))?;
            Ok(Applied::Updated)
        }
    }
}
