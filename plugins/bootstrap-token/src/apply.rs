//! Create-or-update over the `kube` capability, changing nothing when the stored object already
//! says what the phase wants: a second run leaves every `resourceVersion` as it was.

use serde_json::Value;
use wasmadm_plugin_sdk::kube::{ApiError, Client, ErrorCode, ResourceType};
use wasmadm_plugin_sdk::types::PhaseError;

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
}

fn api(action: &str, ty: &ResourceType, name: &str, e: ApiError) -> PhaseError {
    let what = format!("{action} {} {name:?}: {}", ty.kind, e.message);
    match e.code {
        ErrorCode::Denied => PhaseError::Denied(what),
        _ => PhaseError::Failed(format!("unable to {what}")),
    }
}

fn parse(ty: &ResourceType, name: &str, text: &str) -> Result<Value, PhaseError> {
    serde_json::from_str(text).map_err(|e| {
        PhaseError::Failed(format!(
            "the API returned {} {name:?} as invalid JSON: {e}",
            ty.kind
        ))
    })
}

fn namespace(object: &Value) -> Option<&str> {
    object["metadata"]["namespace"].as_str()
}

/// Reads an object; `None` when it does not exist.
pub fn get(
    client: &Client,
    ty: &ResourceType,
    ns: Option<&str>,
    name: &str,
) -> Result<Option<Value>, PhaseError> {
    match client.get(ty, ns, name) {
        Ok(text) => parse(ty, name, &text).map(Some),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(api("get", ty, name, e)),
    }
}

/// Makes the stored object carry `desired`'s values for `fields` (top-level keys such as `rules`,
/// `subjects`, `data`): creates it when missing, updates it (conditionally, on the stored
/// `resourceVersion`, keeping the rest of the stored object) when a field differs, and leaves it
/// alone otherwise.
pub fn apply(
    client: &Client,
    ty: &ResourceType,
    desired: &Value,
    fields: &[&str],
) -> Result<Applied, PhaseError> {
    let name = desired["metadata"]["name"].as_str().unwrap_or_default();
    let ns = namespace(desired);
    let Some(mut stored) = get(client, ty, ns, name)? else {
        client
            .create(ty, ns, &desired.to_string())
            .map_err(|e| api("create", ty, name, e))?;
        return Ok(Applied::Created);
    };
    if fields.iter().all(|f| stored[*f] == desired[*f]) {
        return Ok(Applied::Unchanged);
    }
    for f in fields {
        stored[*f] = desired[*f].clone();
    }
    client
        .update(ty, ns, &stored.to_string())
        .map_err(|e| api("update", ty, name, e))?;
    Ok(Applied::Updated)
}
