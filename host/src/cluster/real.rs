//! A real API server, through the `kube` crate, with the credentials of a kubeconfig file.
//!
//! The client is created on first use: during `init` the kubeconfig (`admin.conf`) is written by
//! an earlier phase of the same run, as with kubeadm. Calls are blocking for the plugin; the
//! async client runs on a runtime owned by this backend.

use super::resources::Discovered;
use super::{ApiError, ApiErrorCode, Cluster, PatchKind, ResourceType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIResource, APIResourceList};
use kube::api::{
    DeleteParams, DynamicObject, GetParams, ListParams, ObjectList, Patch, PatchParams, PostParams,
};
use kube::core::Request;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A real cluster reached with a kubeconfig file.
pub struct RealCluster {
    kubeconfig: PathBuf,
    runtime: tokio::runtime::Runtime,
    client: OnceLock<Result<kube::Client, ApiError>>,
    /// Discovery documents already read, by (group, version).
    discovered: Mutex<HashMap<(String, String), Vec<APIResource>>>,
}

impl RealCluster {
    /// A backend for the cluster `kubeconfig` points at (read on first use).
    pub fn new(kubeconfig: PathBuf) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(Self {
            kubeconfig,
            runtime,
            client: OnceLock::new(),
            discovered: Mutex::default(),
        })
    }

    fn client(&self) -> Result<kube::Client, ApiError> {
        self.client
            .get_or_init(|| {
                let unavailable = |m: String| ApiError::new(ApiErrorCode::Unavailable, 0, m);
                let path = &self.kubeconfig;
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| unavailable(format!("cannot read kubeconfig {}: {e}", path.display())))?;
                self.runtime.block_on(async {
                    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                        .await
                        .map_err(|e| unavailable(format!("kubeconfig {}: {e}", path.display())))?;
                    kube::Client::try_from(config).map_err(|e| {
                        unavailable(format!("cannot create a client from {}: {e}", path.display()))
                    })
                })
            })
            .clone()
    }

    /// Sends a request built by [`request`] after checking it ([`check_request`]), bounded by
    /// the plugin call's deadline and [`REQUEST_TIMEOUT`].
    fn send<T: serde::de::DeserializeOwned>(&self, req: http::Request<Vec<u8>>) -> Result<T, ApiError> {
        let client = self.client()?;
        let limit = crate::deadline::bound(REQUEST_TIMEOUT);
        self.runtime.block_on(async {
            match tokio::time::timeout(limit, client.request::<T>(req)).await {
                Ok(result) => result.map_err(convert),
                Err(_) => Err(ApiError::new(
                    ApiErrorCode::Unavailable,
                    0,
                    format!("the API server did not answer within {limit:?} (the phase's time left)"),
                )),
            }
        })
    }
}

/// The longest one API request may take, even with time left in the phase.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of a collection or of one object, from parts the `kube` capability has checked
/// (`cluster::resources`): `/api/v1/namespaces/<ns>/<plural>[/<name>]`.
fn object_path(ty: &ResourceType, namespace: Option<&str>, name: Option<&str>) -> String {
    let mut path = if ty.group.is_empty() {
        format!("/api/{}", ty.version)
    } else {
        format!("/apis/{}/{}", ty.group, ty.version)
    };
    if let Some(ns) = namespace.filter(|_| ty.namespaced) {
        path.push_str("/namespaces/");
        path.push_str(ns);
    }
    path.push('/');
    path.push_str(&ty.plural);
    if let Some(name) = name {
        path.push('/');
        path.push_str(name);
    }
    path
}

/// The query parameters wasmadm itself sets; anything else in a built request is refused.
const QUERY_KEYS: [&str; 3] = ["dryRun", "fieldManager", "labelSelector"];

/// Checks the request about to be sent against the call the capability authorized: exactly this
/// method on exactly the object (or collection) path, with no other query parameter than
/// wasmadm's own and the label selector asked for. The host's credentials go only where a rule
/// allowed.
fn check_request(
    req: &http::Request<Vec<u8>>,
    method: http::Method,
    path: &str,
    selector: Option<&str>,
) -> Result<(), ApiError> {
    let refuse = |why: String| {
        ApiError::new(
            ApiErrorCode::Denied,
            0,
            format!("kube: refusing to send {} {}: {why}", req.method(), req.uri()),
        )
    };
    if *req.method() != method || req.uri().path() != path || req.uri().host().is_some() {
        return Err(refuse(format!("it is not {method} {path}")));
    }
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()) {
        if !QUERY_KEYS.contains(&key.as_ref()) {
            return Err(refuse(format!("unexpected query parameter {key:?}")));
        }
        if key == "labelSelector" && Some(value.as_ref()) != selector {
            return Err(refuse("the label selector was changed".into()));
        }
    }
    Ok(())
}

fn convert(e: kube::Error) -> ApiError {
    match e {
        kube::Error::Api(status) => {
            let code = match status.code {
                403 => ApiErrorCode::Forbidden,
                404 => ApiErrorCode::NotFound,
                409 if status.reason == "AlreadyExists" => ApiErrorCode::AlreadyExists,
                409 => ApiErrorCode::Conflict,
                400 | 422 => ApiErrorCode::Invalid,
                _ => ApiErrorCode::Other,
            };
            ApiError::new(code, status.code, status.message)
        }
        other => ApiError::new(ApiErrorCode::Unavailable, 0, other.to_string()),
    }
}

fn to_value(object: DynamicObject) -> Result<Value, ApiError> {
    serde_json::to_value(object).map_err(|e| ApiError::new(ApiErrorCode::Other, 0, e.to_string()))
}

fn from_value(object: Value) -> Result<DynamicObject, ApiError> {
    serde_json::from_value(object)
        .map_err(|e| ApiError::new(ApiErrorCode::Invalid, 0, format!("not a Kubernetes object: {e}")))
}

fn post_params(dry_run: bool) -> PostParams {
    PostParams {
        dry_run,
        field_manager: Some("wasmadm".into()),
    }
}

fn build(
    req: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<http::Request<Vec<u8>>, ApiError> {
    req.map_err(|e| ApiError::new(ApiErrorCode::Invalid, 0, format!("kube: {e}")))
}

fn to_body(object: &DynamicObject) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(object).map_err(|e| ApiError::new(ApiErrorCode::Invalid, 0, e.to_string()))
}

impl Cluster for RealCluster {
    fn get(&self, ty: &ResourceType, namespace: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let base = object_path(ty, namespace, None);
        let req = build(Request::new(base).get(name, &GetParams::default()))?;
        check_request(
            &req,
            http::Method::GET,
            &object_path(ty, namespace, Some(name)),
            None,
        )?;
        self.send::<DynamicObject>(req).and_then(to_value)
    }

    fn list(
        &self,
        ty: &ResourceType,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut params = ListParams::default();
        if let Some(s) = label_selector {
            params = params.labels(s);
        }
        let path = object_path(ty, namespace, None);
        let req = build(Request::new(&path).list(&params))?;
        check_request(&req, http::Method::GET, &path, label_selector)?;
        let list = self.send::<ObjectList<DynamicObject>>(req)?;
        let items = list
            .items
            .into_iter()
            .map(to_value)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(serde_json::json!({
            "apiVersion": ty.api_version(),
            "kind": format!("{}List", ty.kind),
            "metadata": {"resourceVersion": list.metadata.resource_version},
            "items": items,
        }))
    }

    fn create(
        &self,
        ty: &ResourceType,
        namespace: Option<&str>,
        object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let object = from_value(object)?;
        let path = object_path(ty, namespace, None);
        let req = build(Request::new(&path).create(&post_params(dry_run), to_body(&object)?))?;
        check_request(&req, http::Method::POST, &path, None)?;
        self.send::<DynamicObject>(req).and_then(to_value)
    }

    fn update(
        &self,
        ty: &ResourceType,
        namespace: Option<&str>,
        object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let object = from_value(object)?;
        let name = object.metadata.name.clone().unwrap_or_default();
        let base = object_path(ty, namespace, None);
        let req = build(Request::new(base).replace(&name, &post_params(dry_run), to_body(&object)?))?;
        check_request(
            &req,
            http::Method::PUT,
            &object_path(ty, namespace, Some(&name)),
            None,
        )?;
        self.send::<DynamicObject>(req).and_then(to_value)
    }

    fn patch(
        &self,
        ty: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        patch: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let params = PatchParams {
            dry_run,
            field_manager: Some("wasmadm".into()),
            ..PatchParams::default()
        };
        let patch = match kind {
            PatchKind::Merge => Patch::Merge(patch),
            PatchKind::StrategicMerge => Patch::Strategic(patch),
        };
        let base = object_path(ty, namespace, None);
        let req = build(Request::new(base).patch(name, &params, &patch))?;
        check_request(
            &req,
            http::Method::PATCH,
            &object_path(ty, namespace, Some(name)),
            None,
        )?;
        self.send::<DynamicObject>(req).and_then(to_value)
    }

    fn delete(
        &self,
        ty: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let params = DeleteParams {
            dry_run,
            ..DeleteParams::default()
        };
        let base = object_path(ty, namespace, None);
        let req = build(Request::new(base).delete(name, &params))?;
        check_request(
            &req,
            http::Method::DELETE,
            &object_path(ty, namespace, Some(name)),
            None,
        )?;
        self.send::<Value>(req).map(|_| ())
    }

    fn discover(&self, ty: &ResourceType) -> Result<Option<Discovered>, ApiError> {
        let key = (ty.group.clone(), ty.version.clone());
        let cached = self
            .discovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let resources = match cached {
            Some(r) => r,
            None => {
                // The group and version were checked (`resources::check_type_syntax`): the path
                // is exactly the group-version's discovery document.
                let path = match ty.group.as_str() {
                    "" => format!("/api/{}", ty.version),
                    group => format!("/apis/{group}/{}", ty.version),
                };
                let req = build(
                    http::Request::get(&path)
                        .body(Vec::new())
                        .map_err(kube::core::request::Error::BuildRequest),
                )?;
                check_request(&req, http::Method::GET, &path, None)?;
                let list = match self.send::<APIResourceList>(req) {
                    Ok(list) => list.resources,
                    Err(e) if e.code == ApiErrorCode::NotFound => Vec::new(),
                    Err(e) => return Err(e),
                };
                self.discovered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, list.clone());
                list
            }
        };
        Ok(resources
            .iter()
            .find(|r| r.name == ty.plural)
            .map(|r| Discovered {
                kind: r.kind.clone(),
                namespaced: r.namespaced,
            }))
    }
}
