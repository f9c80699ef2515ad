//! wasmadm's in-memory cluster: an object store with the API server's basic semantics (create,
//! get, list with label selectors, conditional update, merge patch, delete, `resourceVersion`,
//! `uid`, `creationTimestamp`). It serves dry-runs, the sandboxed demo, and plugin authors' tests.
//!
//! What other components of a real cluster do (the kubelet, the bootstrap signer) is simulated
//! beside it, in [`simulate`].
//!
//! It can be backed by a JSON file so that consecutive commands (`init`, then `token list`) see
//! the same cluster; every mutation rewrites the file atomically.

use super::{ApiError, ApiErrorCode, Cluster, Collection, Patch, ResourceType, resources, simulate};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where a node root keeps its in-memory cluster between runs (relative to the root).
pub const STATE_FILE: &str = "var/lib/wasmadm/in-memory-cluster.json";

/// group, plural, namespace (`""` if cluster-scoped), name.
pub(super) type Key = (String, String, String, String);

#[derive(Default)]
struct Store {
    objects: BTreeMap<Key, Value>,
    revision: u64,
}

impl Store {
    /// Lets the simulated bootstrap signer ([`simulate::bootstrap_signer`]) catch up after a
    /// write, as a controller would.
    fn run_controllers(&mut self) {
        let Some((k, old, signed)) = simulate::bootstrap_signer(&self.objects) else {
            return;
        };
        let mut signed = signed;
        self.revision += 1;
        stamp(&mut signed, self.revision, Some(&old));
        self.objects.insert(k, signed);
    }
}

/// The in-memory cluster.
pub struct MemoryCluster {
    store: Mutex<Store>,
    file: Option<PathBuf>,
}

/// A state file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("in-memory cluster state {path}: {message}")]
pub struct StateError {
    pub path: PathBuf,
    pub message: String,
}

impl Default for MemoryCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCluster {
    /// An empty cluster that lives as long as the process.
    pub fn new() -> Self {
        Self {
            store: Mutex::new(Store::default()),
            file: None,
        }
    }

    /// A cluster persisted in `path` (created on first write).
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let err = |message: String| StateError {
            path: path.to_path_buf(),
            message,
        };
        let mut store = Store::default();
        match std::fs::read(path) {
            Ok(bytes) => {
                let state: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    err(format!(
                        "not valid JSON ({e}); move it away to start from an empty cluster"
                    ))
                })?;
                store.revision = state["revision"].as_u64().unwrap_or(0);
                for entry in state["objects"].as_array().into_iter().flatten() {
                    let key = (
                        entry["group"].as_str().unwrap_or_default().to_string(),
                        entry["plural"].as_str().unwrap_or_default().to_string(),
                        entry["namespace"].as_str().unwrap_or_default().to_string(),
                        entry["object"]["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                    store.objects.insert(key, entry["object"].clone());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e.to_string())),
        }
        Ok(Self {
            store: Mutex::new(store),
            file: Some(path.to_path_buf()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, store: &Store) -> Result<(), ApiError> {
        let Some(path) = &self.file else { return Ok(()) };
        let objects: Vec<Value> = store
            .objects
            .iter()
            .map(|((group, plural, namespace, _), object)| {
                json!({"group": group, "plural": plural, "namespace": namespace, "object": object})
            })
            .collect();
        let text = serde_json::to_vec_pretty(&json!({"revision": store.revision, "objects": objects}))
            .map_err(|e| ApiError::new(ApiErrorCode::Other, 500, e.to_string()))?;
        crate::util::write_atomic(path, &text, 0o600).map_err(|e| {
            ApiError::new(
                ApiErrorCode::Unavailable,
                503,
                format!("cannot save in-memory cluster state to {}: {e}", path.display()),
            )
        })
    }

    /// Every stored object, for tests and `--dry-run` summaries.
    pub fn objects(&self) -> Vec<Value> {
        self.lock().objects.values().cloned().collect()
    }

    /// Stamps a created (`old` `None`) or changed object with the next revision and, unless
    /// `dry_run`, stores it, lets the controllers catch up and saves the state: what every write
    /// but a delete ends with.
    fn commit(
        &self,
        store: &mut Store,
        k: Key,
        mut object: Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let revision = store.revision + 1;
        stamp(&mut object, revision, old);
        if !dry_run {
            store.revision = revision;
            store.objects.insert(k, object.clone());
            store.run_controllers();
            self.save(store)?;
        }
        Ok(object)
    }
}

/// An object's key, with the name and namespace checked as the API server checks them.
fn key(Collection { ty, namespace }: Collection<'_>, name: &str) -> Result<Key, ApiError> {
    let invalid = |e: ApiError| ApiError::new(ApiErrorCode::Invalid, 400, e.message);
    resources::check_name(ty, name).map_err(invalid)?;
    let ns = match (ty.namespaced, namespace) {
        (true, Some(ns)) if !ns.is_empty() => {
            resources::check_namespace(ns).map_err(invalid)?;
            ns.to_string()
        }
        (true, _) => {
            return Err(ApiError::new(
                ApiErrorCode::Invalid,
                400,
                format!("{} is namespaced: a namespace is required", ty.qualified_plural()),
            ));
        }
        (false, _) => String::new(),
    };
    Ok((ty.group.clone(), ty.plural.clone(), ns, name.to_string()))
}

fn not_found(ty: &ResourceType, name: &str) -> ApiError {
    ApiError::new(
        ApiErrorCode::NotFound,
        404,
        format!("{} {name:?} not found", ty.qualified_plural()),
    )
}

/// Refuses what a real API server refuses as too large (its request body limit, 3 MiB).
fn check_size(what: &Value) -> Result<(), ApiError> {
    let size = serde_json::to_vec(what).map(|v| v.len()).unwrap_or(usize::MAX);
    if size <= resources::MAX_OBJECT_BYTES {
        return Ok(());
    }
    Err(ApiError::new(
        ApiErrorCode::Other,
        413,
        format!(
            "Request entity too large: limit is {} bytes, the object has {size}",
            resources::MAX_OBJECT_BYTES
        ),
    ))
}

/// Checks the object's shape and fills `apiVersion`, `kind` and `metadata.namespace`.
fn normalize(
    Collection { ty, namespace }: Collection<'_>,
    mut object: Value,
) -> Result<(Value, String), ApiError> {
    check_size(&object)?;
    let invalid = |m: String| ApiError::new(ApiErrorCode::Invalid, 422, m);
    let obj = object
        .as_object_mut()
        .ok_or_else(|| invalid(format!("{} object must be a JSON object", ty.kind)))?;
    if let Some(v) = obj.get("apiVersion").and_then(Value::as_str)
        && v != ty.api_version()
    {
        return Err(invalid(format!(
            "apiVersion {v:?} does not match {}",
            ty.api_version()
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != ty.kind
    {
        return Err(invalid(format!("kind {k:?} does not match {}", ty.kind)));
    }
    obj.insert("apiVersion".into(), ty.api_version().into());
    obj.insert("kind".into(), ty.kind.clone().into());
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| invalid("metadata must be an object".into()))?;
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(format!("{}: metadata.name is required", ty.kind)))?
        .to_string();
    resources::check_name(ty, &name)
        .map_err(|e| invalid(format!("{}: metadata.name: {}", ty.kind, e.message)))?;
    if ty.namespaced {
        let ns = namespace.unwrap_or_default();
        match meta.get("namespace").and_then(Value::as_str) {
            Some(m) if m != ns => {
                return Err(invalid(format!(
                    "metadata.namespace {m:?} does not match the request's namespace {ns:?}"
                )));
            }
            _ => {
                meta.insert("namespace".into(), ns.into());
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok((object, name))
}

fn stamp(object: &mut Value, revision: u64, created: Option<&Value>) {
    let meta = &mut object["metadata"];
    meta["resourceVersion"] = revision.to_string().into();
    match created {
        Some(old) => {
            meta["uid"] = old["metadata"]["uid"].clone();
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
        }
        None => {
            meta["uid"] = uid(revision).into();
            meta["creationTimestamp"] = now_rfc3339().into();
        }
    }
}

fn uid(revision: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let x = nanos ^ ((revision as u128) << 64) ^ (std::process::id() as u128);
    let h = format!("{x:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The current time as `2006-01-02T15:04:05Z`.
pub fn now_rfc3339() -> String {
    kubeadm_bootstrap_token::clock::format_rfc3339(kubeadm_bootstrap_token::clock::now())
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated.
fn selector_matches(selector: &str, labels: &Value) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            let get = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
            if let Some((k, v)) = term.split_once("!=") {
                get(k) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                get(k) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                get(k).is_none()
            } else {
                labels.get(term).is_some()
            }
        })
}

impl Cluster for MemoryCluster {
    /// The in-memory cluster authenticates nobody: every identity sees the same store.
    fn with_credentials(self: Arc<Self>, _kubeconfig: &Path) -> Result<Arc<dyn Cluster>, ApiError> {
        Ok(self)
    }

    /// Every server is this cluster; one that holds no `kube-public/cluster-info` has nothing to
    /// join, which is said at once instead of letting discovery wait out its timeout.
    fn connect_to(self: Arc<Self>, endpoint: &super::Endpoint) -> Result<Arc<dyn Cluster>, ApiError> {
        let configmaps = ResourceType::v1("", "ConfigMap", "configmaps", true);
        match self.get(configmaps.collection(Some("kube-public")), "cluster-info") {
            Err(e) if e.code == ApiErrorCode::NotFound => {
                let fix = match &self.file {
                    Some(_) => format!(
                        "copy {STATE_FILE} from a node root where `init` ran to this one, or join a real \
                         cluster with --cluster kubeconfig"
                    ),
                    // A dry run keeps no state and starts from an empty cluster.
                    None => "a dry run starts from an empty in-memory cluster: dry-run a join against a \
                             real cluster with --cluster kubeconfig"
                        .to_string(),
                };
                Err(ApiError::new(
                    ApiErrorCode::Unavailable,
                    0,
                    format!(
                        "{} is the in-memory cluster here, and it holds no kube-public/cluster-info (no \
                         `wasmadm init` made it): {fix}",
                        endpoint.server
                    ),
                ))
            }
            _ => Ok(self),
        }
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn get(&self, at: Collection<'_>, name: &str) -> Result<Value, ApiError> {
        let k = key(at, name)?;
        self.lock()
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| not_found(at.ty, name))
    }

    fn list(&self, at: Collection<'_>, label_selector: Option<&str>) -> Result<Value, ApiError> {
        let Collection { ty, namespace } = at;
        let store = self.lock();
        let items: Vec<Value> = store
            .objects
            .iter()
            .filter(|((g, p, ns, _), _)| {
                *g == ty.group && *p == ty.plural && namespace.is_none_or(|n| n.is_empty() || n == ns)
            })
            .map(|(_, o)| o)
            .filter(|o| label_selector.is_none_or(|s| selector_matches(s, &o["metadata"]["labels"])))
            .cloned()
            .collect();
        Ok(json!({
            "apiVersion": ty.api_version(),
            "kind": format!("{}List", ty.kind),
            "metadata": {"resourceVersion": store.revision.to_string()},
            "items": items,
        }))
    }

    fn create(&self, at: Collection<'_>, object: Value, dry_run: bool) -> Result<Value, ApiError> {
        let (object, name) = normalize(at, object)?;
        let k = key(at, &name)?;
        let mut store = self.lock();
        if store.objects.contains_key(&k) {
            return Err(ApiError::new(
                ApiErrorCode::AlreadyExists,
                409,
                format!("{} {name:?} already exists", at.ty.qualified_plural()),
            ));
        }
        self.commit(&mut store, k, object, None, dry_run)
    }

    fn update(&self, at: Collection<'_>, object: Value, dry_run: bool) -> Result<Value, ApiError> {
        let (object, name) = normalize(at, object)?;
        let k = key(at, &name)?;
        let mut store = self.lock();
        let old = store
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| not_found(at.ty, &name))?;
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::new(
                ApiErrorCode::Conflict,
                409,
                format!(
                    "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
                     please apply your changes to the latest version and try again",
                    at.ty.qualified_plural()
                ),
            ));
        }
        self.commit(&mut store, k, object, Some(&old), dry_run)
    }

    /// Applies every patch as a JSON merge patch (no strategic-merge list semantics).
    fn patch(&self, at: Collection<'_>, name: &str, patch: Patch, dry_run: bool) -> Result<Value, ApiError> {
        let patch = patch.body();
        if !patch.is_object() {
            return Err(ApiError::new(
                ApiErrorCode::Invalid,
                400,
                "a merge patch must be a JSON object",
            ));
        }
        check_size(patch)?;
        let k = key(at, name)?;
        let mut store = self.lock();
        let old = store
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| not_found(at.ty, name))?;
        let mut object = old.clone();
        merge_patch(&mut object, patch);
        let (object, new_name) = normalize(at, object)?;
        if new_name != name {
            return Err(ApiError::new(
                ApiErrorCode::Invalid,
                422,
                "a patch cannot change metadata.name",
            ));
        }
        self.commit(&mut store, k, object, Some(&old), dry_run)
    }

    fn delete(&self, at: Collection<'_>, name: &str, dry_run: bool) -> Result<(), ApiError> {
        let k = key(at, name)?;
        let mut store = self.lock();
        if !store.objects.contains_key(&k) {
            return Err(not_found(at.ty, name));
        }
        if !dry_run {
            store.objects.remove(&k);
            store.revision += 1;
            store.run_controllers();
            self.save(&store)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm() -> ResourceType {
        ResourceType {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        }
    }

    #[test]
    fn crud_with_resource_versions() {
        let c = MemoryCluster::new();
        let ns = Some("kube-system");
        let made = c
            .create(
                cm().collection(ns),
                json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}}),
                false,
            )
            .expect("create");
        assert_eq!(made["metadata"]["namespace"], "kube-system");
        assert_eq!(made["kind"], "ConfigMap");
        let again = c.create(cm().collection(ns), json!({"metadata": {"name": "a"}}), false);
        assert_eq!(again.expect_err("dup").code, ApiErrorCode::AlreadyExists);

        let mut stale = made.clone();
        c.patch(
            cm().collection(ns),
            "a",
            Patch::Merge(json!({"data": {"k": "w"}})),
            false,
        )
        .expect("patch");
        stale["data"]["k"] = "z".into();
        assert_eq!(
            c.update(cm().collection(ns), stale, false)
                .expect_err("stale")
                .code,
            ApiErrorCode::Conflict
        );

        let got = c.get(cm().collection(ns), "a").expect("get");
        assert_eq!(got["data"]["k"], "w");
        assert_eq!(got["metadata"]["uid"], made["metadata"]["uid"]);
        assert_ne!(
            got["metadata"]["resourceVersion"],
            made["metadata"]["resourceVersion"]
        );

        let list = c.list(cm().collection(ns), Some("x=1")).expect("list");
        assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
        let list = c.list(cm().collection(ns), Some("x=2")).expect("list");
        assert_eq!(list["items"].as_array().map(Vec::len), Some(0));

        c.delete(cm().collection(ns), "a", false).expect("delete");
        assert_eq!(
            c.get(cm().collection(ns), "a").expect_err("gone").code,
            ApiErrorCode::NotFound
        );
    }

    #[test]
    fn dry_run_changes_nothing_and_state_file_persists() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("cluster.json");
        let c = MemoryCluster::open(&file).expect("open");
        c.create(
            cm().collection(Some("default")),
            json!({"metadata": {"name": "dry"}}),
            true,
        )
        .expect("dry");
        assert!(c.get(cm().collection(Some("default")), "dry").is_err());
        c.create(
            cm().collection(Some("default")),
            json!({"metadata": {"name": "kept"}}),
            false,
        )
        .expect("create");
        let reopened = MemoryCluster::open(&file).expect("reopen");
        assert!(reopened.get(cm().collection(Some("default")), "kept").is_ok());
    }
}
