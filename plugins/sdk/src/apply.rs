//! Create-or-update of API objects, as kubeadm's `apiclient.CreateOrUpdate*` helpers, but
//! idempotent: an object whose fields are all already stored as given is left alone, so a second
//! run changes nothing (and a dry-run plan lists only real changes).

use crate::kube::{self, ApiError, Client, ErrorCode, ResourceType};
use crate::types::PhaseError;
use serde_json::Value;

/// A type of API object: group (`""` for the core group), version, kind, plural and whether
/// its objects live in a namespace.
///
/// ```
/// let deployments = wasmadm_plugin_sdk::apply::resource("apps", "v1", "Deployment", "deployments", true);
/// assert_eq!(deployments.kind, "Deployment");
/// assert!(deployments.namespaced);
/// ```
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
///
/// ```no_run
/// use wasmadm_plugin_sdk::apply::{self, Applied, Update, config_maps};
/// # fn f(client: &wasmadm_plugin_sdk::kube::Client, cm: &serde_json::Value) -> wasmadm_plugin_sdk::Result {
/// match apply::create_or_update(client, &config_maps(), cm, Update::Replace)? {
///     Applied::Created => wasmadm_plugin_sdk::print("[vendor] Created ConfigMap \"vendor\""),
///     Applied::Updated | Applied::Unchanged => {}
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The object did not exist and was created.
    Created,
    /// The stored object differed and was updated.
    Updated,
    /// The stored object already had every desired field: nothing was sent.
    Unchanged,
}

/// True when every field of `want` is in `have` with the same value (lists must match item for
/// item). Fields only the server sets (status, defaults, metadata) do not count as differences.
///
/// ```
/// use serde_json::json;
/// use wasmadm_plugin_sdk::apply::is_subset;
/// let stored = json!({"metadata": {"name": "a", "uid": "u-1"}, "data": {"k": "v"}});
/// assert!(is_subset(&json!({"metadata": {"name": "a"}, "data": {"k": "v"}}), &stored));
/// assert!(!is_subset(&json!({"data": {"k": "w"}}), &stored));
/// ```
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

/// Parses an object the API returned.
///
/// ```
/// use wasmadm_plugin_sdk::apply;
/// let node = apply::parse(r#"{"metadata": {"name": "n1"}}"#).expect("JSON");
/// assert_eq!(node["metadata"]["name"], "n1");
/// assert!(apply::parse("<html>").is_err());
/// ```
pub fn parse(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError {
        code: ErrorCode::Other,
        status: 0,
        message: format!("the API returned an object that is not JSON: {e}"),
    })
}

/// Reads an object; `None` when it does not exist.
///
/// ```no_run
/// use wasmadm_plugin_sdk::apply::{self, config_maps};
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// let client = apply::cluster()?;
/// let config = apply::get(&client, &config_maps(), Some("kube-system"), "kubeadm-config")?;
/// let uploaded = config.is_some();
/// # let _ = uploaded; Ok(()) }
/// ```
pub fn get(
    client: &Client,
    ty: &ResourceType,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    match client.get(ty, namespace, name) {
        Ok(text) => parse(&text).map(Some),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
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

/// ConfigMaps (core `v1`, namespaced).
///
/// ```
/// assert_eq!(wasmadm_plugin_sdk::apply::config_maps().plural, "configmaps");
/// ```
pub fn config_maps() -> ResourceType {
    resource("", "v1", "ConfigMap", "configmaps", true)
}

/// Roles (`rbac.authorization.k8s.io/v1`, namespaced).
///
/// ```
/// assert_eq!(wasmadm_plugin_sdk::apply::roles().kind, "Role");
/// ```
pub fn roles() -> ResourceType {
    resource("rbac.authorization.k8s.io", "v1", "Role", "roles", true)
}

/// RoleBindings (`rbac.authorization.k8s.io/v1`, namespaced).
///
/// ```
/// assert!(wasmadm_plugin_sdk::apply::role_bindings().namespaced);
/// ```
pub fn role_bindings() -> ResourceType {
    resource(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    )
}

/// ClusterRoleBindings (`rbac.authorization.k8s.io/v1`, cluster-scoped).
///
/// ```
/// assert!(!wasmadm_plugin_sdk::apply::cluster_role_bindings().namespaced);
/// ```
pub fn cluster_role_bindings() -> ResourceType {
    resource(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    )
}

/// Nodes (core `v1`, cluster-scoped).
///
/// ```
/// assert_eq!(wasmadm_plugin_sdk::apply::nodes().plural, "nodes");
/// ```
pub fn nodes() -> ResourceType {
    resource("", "v1", "Node", "nodes", false)
}

/// kubeadm's break-glass kubeconfig (group `system:masters`), written by `init` only.
///
/// ```
/// use wasmadm_plugin_sdk::{apply::SUPER_ADMIN_CONF, types::CapabilityRequest};
/// # let mut needs = wasmadm_plugin_sdk::info("p", "s").needs;
/// needs.files_read.push(SUPER_ADMIN_CONF.to_string());
/// # let _: CapabilityRequest = needs;
/// ```
pub const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";

/// The group of `admin.conf`'s identity, and the ClusterRoleBinding that gives it `cluster-admin`.
///
/// ```
/// assert_eq!(wasmadm_plugin_sdk::apply::CLUSTER_ADMINS, "kubeadm:cluster-admins");
/// ```
pub const CLUSTER_ADMINS: &str = "kubeadm:cluster-admins";

/// The rule [`cluster`] needs to create ClusterRoleBinding `kubeadm:cluster-admins` with the run's
/// client, for a phase's `describe()`. The pipeline grants the same rule once more with
/// `kubeconfig: /etc/kubernetes/super-admin.conf` (see `kube.cluster-as` in `wit/kube.wit`).
///
/// ```
/// let mut info = wasmadm_plugin_sdk::info("vendor-addon", "Installs the vendor's addon");
/// info.needs.kube.push(wasmadm_plugin_sdk::apply::admin_binding_rule());
/// assert_eq!(info.needs.kube[0].resource_names, ["kubeadm:cluster-admins"]);
/// ```
pub fn admin_binding_rule() -> crate::types::KubeRule {
    crate::types::KubeRule::new(&["create"], "rbac.authorization.k8s.io", &["clusterrolebindings"])
        .named(&[CLUSTER_ADMINS])
}

/// The run's cluster, limited to the phase's grants, with `admin.conf`'s permissions in place.
///
/// As kubeadm's `EnsureAdminClusterRoleBinding`: `admin.conf`'s group has no permissions until
/// ClusterRoleBinding `kubeadm:cluster-admins` exists. The binding is created with the run's own
/// client; when the server refuses that (`forbidden`: the group has no rights yet), with
/// `super-admin.conf`'s, then the run's client is used once the server lets it act (up to 30 s:
/// the authorizer sees a new binding a moment late). A phase whose grants do not include the
/// binding skips the step (nothing is sent). (The cluster's configuration is
/// [`Context::cluster_configuration`](crate::Context::cluster_configuration).)
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// let client = wasmadm_plugin_sdk::apply::cluster()?;
/// let nodes = client.list(&wasmadm_plugin_sdk::apply::nodes(), None, None)?;
/// # let _ = nodes; Ok(()) }
/// ```
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
        Ok(_) => {}
        Err(e) if e.code == ErrorCode::AlreadyExists => {}
        Err(e) => {
            return Err(context(&format!(
                "unable to create ClusterRoleBinding {CLUSTER_ADMINS:?} with {SUPER_ADMIN_CONF}"
            ))(e));
        }
    }
    // The API server's authorizer sees the new binding a moment later: until it does, the run's
    // client is still forbidden. Its own create answering "already exists" says it is allowed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match create(client) {
            Ok(_) => return Ok(()),
            Err(e) if matches!(e.code, ErrorCode::AlreadyExists | ErrorCode::Denied) => return Ok(()),
            Err(e) if e.code == ErrorCode::Forbidden && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => {
                return Err(context(&format!(
                    "ClusterRoleBinding {CLUSTER_ADMINS:?} exists but does not take effect for admin.conf"
                ))(e));
            }
        }
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

/// How [`create_or_update`] brings a stored object that differs from the desired one up to date.
/// The update is conditional on the stored `resourceVersion`, so a concurrent change is a
/// conflict, not lost.
///
/// ```
/// use wasmadm_plugin_sdk::apply::Update;
/// // A token Secret's `type` and `data` are the phase's own; its labels are anyone's.
/// let token = Update::Fields(&["type", "data"]);
/// assert_ne!(token, Update::Merge);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update<'a> {
    /// The stored object becomes the desired one: fields it does not name are dropped (kubeadm's
    /// `CreateOrUpdate`, for objects the phase owns whole, such as an addon's Deployment).
    Replace,
    /// The desired object is merged into the stored one: it gets every field the desired object
    /// names, and keeps the fields it does not name (other keys of a shared ConfigMap).
    Merge,
    /// These top-level fields (`rules`, `subjects`, `data`) are set exactly, the rest of the
    /// stored object is kept: for fields the phase owns whole, where [`Update::Merge`] would keep
    /// stale entries.
    Fields(&'a [&'a str]),
}

/// Creates `object` (its name and, for a namespaced type, its namespace from `metadata`) when
/// it does not exist, updates the stored one as `update` says when it differs, and leaves it
/// alone otherwise, so a second run changes nothing and a dry-run plan lists only real changes.
/// A denial comes back as it is; any other error names the object and the step that failed.
///
/// ```no_run
/// use wasmadm_plugin_sdk::apply::{self, Applied, Update, config_maps};
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// let client = apply::cluster()?;
/// let cm = serde_json::json!({
///     "apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"name": "vendor-settings", "namespace": "kube-system"},
///     "data": {"mode": "strict"},
/// });
/// let applied = apply::create_or_update(&client, &config_maps(), &cm, Update::Merge)?;
/// assert_ne!(applied, Applied::Updated, "a second run changes nothing");
/// # Ok(()) }
/// ```
pub fn create_or_update(
    client: &Client,
    ty: &ResourceType,
    object: &Value,
    update: Update<'_>,
) -> Result<Applied, ApiError> {
    let namespace = object["metadata"]["namespace"].as_str().filter(|_| ty.namespaced);
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let failed = |step: &'static str| {
        move |mut e: ApiError| {
            if e.code != ErrorCode::Denied {
                e.message = format!("unable to {step} {} {name:?}: {}", ty.kind, e.message);
            }
            e
        }
    };
    let Some(stored) = get(client, ty, namespace, name).map_err(failed("get"))? else {
        client
            .create(ty, namespace, &object.to_string())
            .map_err(failed("create"))?;
        return Ok(Applied::Created);
    };
    let updated = match update {
        Update::Replace | Update::Merge if is_subset(object, &stored) => return Ok(Applied::Unchanged),
        Update::Fields(fields) if fields.iter().all(|f| stored[*f] == object[*f]) => {
            return Ok(Applied::Unchanged);
        }
        Update::Replace => {
            let mut replaced = object.clone();
            replaced["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"].clone();
            replaced
        }
        Update::Merge => {
            let mut merged = stored;
            merge(&mut merged, object);
            merged
        }
        Update::Fields(fields) => {
            let mut set = stored;
            for f in fields {
                set[*f] = object[*f].clone();
            }
            set
        }
    };
    client
        .update(ty, namespace, &updated.to_string())
        .map_err(failed("update"))?;
    Ok(Applied::Updated)
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
