//! Create-or-update of API objects, as kubeadm's `apiclient.CreateOrUpdate*` helpers, but
//! idempotent: an object whose fields are all already stored as given is left alone, so a second
//! run changes nothing (and a dry-run plan lists only real changes).

use crate::kube::{self, ApiError, Client, ErrorCode, ResourceType};
use crate::types::PhaseError;
use serde_json::Value;

/// A type of API object, e.g. `resource("apps", "v1", "Deployment", "deployments", true)`.
pub fn resource(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
    }
}

/// What [`create_or_update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
}

/// True when every field of `want` is in `have` with the same value (lists must match item for
/// item). Fields only the server sets (status, defaults, metadata) do not count as differences.
pub fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| is_subset(v, h.get(k).unwrap_or(&Value::Null))),
        (Value::Object(w), Value::Null) => w.is_empty(),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| is_subset(a, b))
        }
        (Value::Array(w), Value::Null) => w.is_empty(),
        (w, h) => w == h,
    }
}

fn parse_api(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError {
        code: ErrorCode::Other,
        status: 0,
        message: format!("the API returned an object that is not JSON: {e}"),
    })
}

/// Reads an object; `None` when it does not exist.
pub fn get(
    client: &Client,
    ty: &ResourceType,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    match client.get(ty, namespace, name) {
        Ok(text) => parse_api(&text).map(Some),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates `object`, or updates the stored one when any of `object`'s fields differ (keeping the
/// server's `resourceVersion`, so a concurrent change is a conflict, not lost).
pub fn create_or_update(client: &Client, ty: &ResourceType, object: &Value) -> Result<Applied, ApiError> {
    let namespace = object["metadata"]["namespace"].as_str().filter(|_| ty.namespaced);
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let text = |v: &Value| v.to_string();
    match get(client, ty, namespace, name)? {
        None => {
            client.create(ty, namespace, &text(object))?;
            Ok(Applied::Created)
        }
        Some(stored) if is_subset(object, &stored) => Ok(Applied::Unchanged),
        Some(stored) => {
            let mut object = object.clone();
            object["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"].clone();
            client.update(ty, namespace, &text(&object))?;
            Ok(Applied::Updated)
        }
    }
}

/// An API error as a phase error that names what was being done (a denial stays `denied`, as
/// with `?`, which converts without naming anything).
///
/// ```no_run
/// use wasmadm_plugin_sdk::apply::{self, config_maps};
/// # fn f() -> Result<(), wasmadm_plugin_sdk::types::PhaseError> {
/// let client = apply::cluster()?;
/// let found = apply::get(&client, &config_maps(), Some("kube-system"), "kubeadm-config")
///     .map_err(apply::context("reading ConfigMap \"kubeadm-config\""))?;
/// # Ok(()) }
/// ```
pub fn context(what: &str) -> impl Fn(ApiError) -> crate::types::PhaseError + '_ {
    move |e| match e.code {
        ErrorCode::Denied => crate::types::PhaseError::Denied(e.message),
        _ => crate::types::PhaseError::Failed(format!("{what}: {}", e.message)),
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

pub fn cluster_role_bindings() -> ResourceType {
    resource(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    )
}

pub fn nodes() -> ResourceType {
    resource("", "v1", "Node", "nodes", false)
}

/// kubeadm's break-glass kubeconfig (group `system:masters`), written by `init` only.
pub const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";

/// The group of `admin.conf`'s identity, and the ClusterRoleBinding that gives it `cluster-admin`.
pub const CLUSTER_ADMINS: &str = "kubeadm:cluster-admins";

/// The rule [`cluster`] needs to create ClusterRoleBinding `kubeadm:cluster-admins` with the run's
/// client, for a phase's `describe()`. The pipeline grants the same rule once more with
/// `kubeconfig: /etc/kubernetes/super-admin.conf` (see `kube.cluster-as` in `wit/kube.wit`).
pub fn admin_binding_rule() -> crate::types::KubeRule {
    crate::types::KubeRule::new(&["create"], "rbac.authorization.k8s.io", &["clusterrolebindings"])
        .named(&[CLUSTER_ADMINS])
}

/// The run's cluster, limited to the phase's grants, with `admin.conf`'s permissions in place.
///
/// As kubeadm's `EnsureAdminClusterRoleBinding`: `admin.conf`'s group has no permissions until
/// ClusterRoleBinding `kubeadm:cluster-admins` exists. The binding is created with the run's own
/// client; when the server refuses that (`forbidden`: the group has no rights yet), with
/// `super-admin.conf`'s, then the run's client is used. A phase whose grants do not include the
/// binding skips the step (nothing is sent).
pub fn cluster() -> Result<Client, PhaseError> {
    let client = kube::cluster().map_err(context("connecting to the cluster"))?;
    ensure_admin_binding(&client)?;
    Ok(client)
}

fn ensure_admin_binding(client: &Client) -> Result<(), PhaseError> {
    let binding = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": CLUSTER_ADMINS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": CLUSTER_ADMINS}],
    })
    .to_string();
    let ty = cluster_role_bindings();
    let create = |client: &Client| with_retries(|| client.create(&ty, None, &binding));
    match create(client) {
        Ok(_) => return Ok(()),
        Err(e) if matches!(e.code, ErrorCode::AlreadyExists | ErrorCode::Denied) => return Ok(()),
        Err(e) if e.code == ErrorCode::Forbidden => {}
        Err(e) => {
            return Err(context(&format!(
                "unable to create ClusterRoleBinding {CLUSTER_ADMINS:?}"
            ))(e));
        }
    }
    crate::debug(&format!(
        "creating the ClusterRoleBinding for the {CLUSTER_ADMINS} Group by using super-admin.conf"
    ));
    let elevated = kube::cluster_as(SUPER_ADMIN_CONF).map_err(|e| match e.code {
        ErrorCode::Denied => PhaseError::Denied(e.message),
        _ => PhaseError::Failed(format!(
            "the ClusterRoleBinding for the {CLUSTER_ADMINS} Group is missing but {SUPER_ADMIN_CONF} cannot \
             create it: {}",
            e.message
        )),
    })?;
    match create(&elevated) {
        Ok(_) => Ok(()),
        Err(e) if e.code == ErrorCode::AlreadyExists => Ok(()),
        Err(e) => Err(context(&format!(
            "unable to create ClusterRoleBinding {CLUSTER_ADMINS:?} with {SUPER_ADMIN_CONF}"
        ))(e)),
    }
}

/// Retries a call while the server cannot be reached or fails for a reason other than an answer
/// about the object (as kubeadm's poll), for up to 30 seconds.
fn with_retries<T>(mut call: impl FnMut() -> Result<T, ApiError>) -> Result<T, ApiError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match call() {
            Err(e)
                if matches!(e.code, ErrorCode::Unavailable | ErrorCode::Other)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            result => return result,
        }
    }
}

/// Parses an object the API returned.
pub fn parse(json: &str) -> Result<Value, PhaseError> {
    serde_json::from_str(json).map_err(|e| PhaseError::Failed(format!("the API returned invalid JSON: {e}")))
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

/// Creates `object` (with `metadata.name`), or merges `object` into the stored one so that it has
/// every field of `object` while fields it does not name (other ConfigMap keys, say) are kept, or
/// leaves it alone. [`create_or_update`] replaces instead.
pub fn create_or_merge(
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
                .map_err(context(&format!("creating {what}")))?;
            Ok(Applied::Created)
        }
        Err(e) => Err(context(&format!("reading {what}"))(e)),
        Ok(json) => {
            let stored = parse(&json)?;
            if is_subset(object, &stored) {
                return Ok(Applied::Unchanged);
            }
            let mut updated = stored;
            merge(&mut updated, object);
            client
                .update(ty, namespace, &updated.to_string())
                .map_err(context(&format!("updating {what}")))?;
            Ok(Applied::Updated)
        }
    }
}

/// Makes the stored object carry `desired`'s values for `fields` (top-level keys such as `rules`,
/// `subjects`, `data`), exactly: creates it when missing, updates it (conditionally, on the stored
/// `resourceVersion`, keeping the rest of the stored object) when one of them differs, and leaves
/// it alone otherwise. For objects whose named fields the phase owns whole (RBAC rules, a token's
/// data), where [`create_or_merge`] would keep stale entries.
pub fn create_or_set_fields(
    client: &Client,
    ty: &ResourceType,
    desired: &Value,
    fields: &[&str],
) -> Result<Applied, PhaseError> {
    let name = desired["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = desired["metadata"]["namespace"].as_str();
    let what = |action: &str| format!("unable to {action} {} {name:?}", ty.kind);
    let Some(mut stored) = get(client, ty, namespace, name).map_err(context(&what("get")))? else {
        client
            .create(ty, namespace, &desired.to_string())
            .map_err(context(&what("create")))?;
        return Ok(Applied::Created);
    };
    if fields.iter().all(|f| stored[*f] == desired[*f]) {
        return Ok(Applied::Unchanged);
    }
    for f in fields {
        stored[*f] = desired[*f].clone();
    }
    client
        .update(ty, namespace, &stored.to_string())
        .map_err(context(&what("update")))?;
    Ok(Applied::Updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_server_fields_but_not_changes() {
        let want = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let have = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1"}}, "data": {"k": "v"}});
        assert!(is_subset(&want, &have));
        let changed = json!({"metadata": {"name": "a", "labels": {"x": "2"}}, "data": {"k": "v"}});
        assert!(!is_subset(&changed, &have));
        assert!(!is_subset(&json!({"l": [1, 2]}), &json!({"l": [1]})));
        assert!(is_subset(&json!({"l": [], "m": {}}), &json!({})));
    }
}
