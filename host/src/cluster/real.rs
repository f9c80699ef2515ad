//! A real API server, through the `kube` crate, with the credentials of a kubeconfig file.
//!
//! The client is created on first use: during `init` the kubeconfig (`admin.conf`) is written by
//! an earlier phase of the same run, as with kubeadm. Calls are blocking for the plugin; the
//! async client runs on a runtime owned by this backend.

use super::resources::Discovered;
use super::{ApiError, ApiErrorCode, Cluster, Collection, Endpoint, Patch, ResourceType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIResource, APIResourceList};
use kube::api::{DeleteParams, DynamicObject, GetParams, ListParams, ObjectList, PatchParams, PostParams};
use kube::core::Request;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A real cluster reached with a kubeconfig file, or at an endpoint a plugin named.
pub struct RealCluster {
    source: Source,
    runtime: tokio::runtime::Runtime,
    client: OnceLock<Result<kube::Client, ApiError>>,
    /// Discovery documents already read, by (group, version).
    discovered: Mutex<HashMap<(String, String), Vec<APIResource>>>,
}

/// Where a [`RealCluster`] finds its server and credentials.
enum Source {
    /// A kubeconfig file (a host path), read on first use.
    Kubeconfig(PathBuf),
    /// A server and identity a plugin named (`kube.connect`), already checked against its grants.
    Endpoint(Box<kube::Config>),
}

impl RealCluster {
    /// A backend for the cluster `kubeconfig` points at (read on first use).
    pub fn new(kubeconfig: PathBuf) -> std::io::Result<Self> {
        Self::with_source(Source::Kubeconfig(kubeconfig))
    }

    /// A backend for `endpoint` (see [`Endpoint`]); nothing is sent before the first call.
    pub fn at(endpoint: &Endpoint) -> Result<Self, ApiError> {
        let invalid = |m: String| ApiError::new(ApiErrorCode::Invalid, 0, m);
        let uri: http::Uri = endpoint
            .server
            .parse()
            .map_err(|e| invalid(format!("kube: server {:?} is not a URL: {e}", endpoint.server)))?;
        let mut config = kube::Config::new(uri);
        match &endpoint.ca_pem {
            Some(pem) => {
                let certs = CertificateDer::pem_slice_iter(pem)
                    .map(|c| c.map(|c| c.to_vec()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        invalid(format!(
                            "kube: the CA for {} is not valid PEM: {e}",
                            endpoint.server
                        ))
                    })?;
                if certs.is_empty() {
                    return Err(invalid(format!(
                        "kube: the CA for {} holds no certificate",
                        endpoint.server
                    )));
                }
                config.root_cert = Some(certs);
            }
            None => config.accept_invalid_certs = true,
        }
        config.auth_info.token = endpoint.bearer_token.clone().map(Into::into);
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        Self::with_source(Source::Endpoint(Box::new(config))).map_err(|e| {
            ApiError::new(
                ApiErrorCode::Unavailable,
                0,
                format!("cannot start an API client: {e}"),
            )
        })
    }

    fn with_source(source: Source) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(Self {
            source,
            runtime,
            client: OnceLock::new(),
            discovered: Mutex::default(),
        })
    }

    fn client(&self) -> Result<kube::Client, ApiError> {
        self.client
            .get_or_init(|| {
                let unavailable = |m: String| ApiError::new(ApiErrorCode::Unavailable, 0, m);
                let _guard = self.runtime.enter();
                let path = match &self.source {
                    Source::Endpoint(config) => {
                        let server = config.cluster_url.to_string();
                        return kube::Client::try_from((**config).clone())
                            .map_err(|e| unavailable(format!("cannot create a client for {server}: {e}")));
                    }
                    Source::Kubeconfig(path) => path,
                };
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

    /// Sends a request (built with `kube::core::Request` and checked with [`check_request`]),
    /// bounded by the plugin call's deadline and [`REQUEST_TIMEOUT`].
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

    /// Builds a request on the collection `at` (`name`: on one of its objects), checks that it is
    /// exactly that call ([`check_request`]) and sends it.
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: http::Method,
        at: Collection<'_>,
        name: Option<&str>,
        selector: Option<&str>,
        request: impl FnOnce(&Request) -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<T, ApiError> {
        let req = build(request(&Request::new(collection_path(at))))?;
        check_request(&req, method, &segments(at, name), selector)?;
        self.send(req)
    }
}

/// The longest one API request may take, even with time left in the phase.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a `kube.connect` client waits for a TCP connection: an endpoint that does not answer
/// is reported soon, so that a plugin polling it (join's discovery) can say so and try again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The path segments of a collection or of one object:
/// `api/v1/namespaces/<ns>/<plural>[/<name>]` or `apis/<group>/<version>/...`.
fn segments<'a>(Collection { ty, namespace }: Collection<'a>, name: Option<&'a str>) -> Vec<&'a str> {
    let mut parts = if ty.group.is_empty() {
        vec!["api"]
    } else {
        vec!["apis", ty.group.as_str()]
    };
    parts.push(&ty.version);
    if let Some(ns) = namespace.filter(|_| ty.namespaced) {
        parts.extend(["namespaces", ns]);
    }
    parts.push(&ty.plural);
    parts.extend(name);
    parts
}

/// The path of a collection, from parts the `kube` capability has checked (`cluster::resources`);
/// `kube::core::Request` appends an object's name.
fn collection_path(at: Collection<'_>) -> String {
    format!("/{}", segments(at, None).join("/"))
}

/// The query parameters wasmadm itself sets; anything else in a built request is refused.
const QUERY_KEYS: [&str; 3] = ["dryRun", "fieldManager", "labelSelector"];

/// Checks the request about to be sent against the call the capability authorized: this method,
/// a path of exactly these segments (each one plain: not empty, `.` or `..`, no `%`), and no
/// query parameter but wasmadm's own and the label selector asked for. The host's credentials
/// go only where a rule allowed, even if a string slipped past `cluster::resources`.
fn check_request(
    req: &http::Request<Vec<u8>>,
    method: http::Method,
    expected: &[&str],
    selector: Option<&str>,
) -> Result<(), ApiError> {
    let refuse = |why: String| {
        ApiError::new(
            ApiErrorCode::Denied,
            0,
            format!("kube: refusing to send {} {}: {why}", req.method(), req.uri()),
        )
    };
    let path = req.uri().path();
    let sent: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let plain = |s: &&str| !s.is_empty() && *s != "." && *s != ".." && !s.contains('%');
    if *req.method() != method || req.uri().host().is_some() || sent != expected || !sent.iter().all(plain) {
        return Err(refuse(format!("it is not {method} /{}", expected.join("/"))));
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
    fn with_credentials(self: Arc<Self>, kubeconfig: &Path) -> Result<Arc<dyn Cluster>, ApiError> {
        let other = RealCluster::new(kubeconfig.to_path_buf()).map_err(|e| {
            ApiError::new(
                ApiErrorCode::Unavailable,
                0,
                format!("cannot start an API client: {e}"),
            )
        })?;
        Ok(Arc::new(other))
    }

    fn connect_to(self: Arc<Self>, endpoint: &Endpoint) -> Result<Arc<dyn Cluster>, ApiError> {
        Ok(Arc::new(RealCluster::at(endpoint)?))
    }

    fn get(&self, at: Collection<'_>, name: &str) -> Result<Value, ApiError> {
        self.call(http::Method::GET, at, Some(name), None, |r| {
            r.get(name, &GetParams::default())
        })
        .and_then(to_value)
    }

    fn list(&self, at: Collection<'_>, label_selector: Option<&str>) -> Result<Value, ApiError> {
        let mut params = ListParams::default();
        if let Some(s) = label_selector {
            params = params.labels(s);
        }
        let list: ObjectList<DynamicObject> =
            self.call(http::Method::GET, at, None, label_selector, |r| r.list(&params))?;
        let items = list
            .items
            .into_iter()
            .map(to_value)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(serde_json::json!({
            "apiVersion": at.ty.api_version(),
            "kind": format!("{}List", at.ty.kind),
            "metadata": {"resourceVersion": list.metadata.resource_version},
            "items": items,
        }))
    }

    fn create(&self, at: Collection<'_>, object: Value, dry_run: bool) -> Result<Value, ApiError> {
        let body = to_body(&from_value(object)?)?;
        self.call(http::Method::POST, at, None, None, |r| {
            r.create(&post_params(dry_run), body)
        })
        .and_then(to_value)
    }

    fn update(&self, at: Collection<'_>, object: Value, dry_run: bool) -> Result<Value, ApiError> {
        let object = from_value(object)?;
        let name = object.metadata.name.clone().unwrap_or_default();
        let body = to_body(&object)?;
        self.call(http::Method::PUT, at, Some(&name), None, |r| {
            r.replace(&name, &post_params(dry_run), body)
        })
        .and_then(to_value)
    }

    fn patch(&self, at: Collection<'_>, name: &str, patch: Patch, dry_run: bool) -> Result<Value, ApiError> {
        let params = PatchParams {
            dry_run,
            field_manager: Some("wasmadm".into()),
            ..PatchParams::default()
        };
        let patch = match patch {
            Patch::Merge(p) => kube::api::Patch::Merge(p),
            Patch::StrategicMerge(p) => kube::api::Patch::Strategic(p),
        };
        self.call(http::Method::PATCH, at, Some(name), None, |r| {
            r.patch(name, &params, &patch)
        })
        .and_then(to_value)
    }

    fn delete(&self, at: Collection<'_>, name: &str, dry_run: bool) -> Result<(), ApiError> {
        let params = DeleteParams {
            dry_run,
            ..DeleteParams::default()
        };
        self.call::<Value>(http::Method::DELETE, at, Some(name), None, |r| {
            r.delete(name, &params)
        })
        .map(|_| ())
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
                let expected = match ty.group.as_str() {
                    "" => vec!["api", ty.version.as_str()],
                    group => vec!["apis", group, ty.version.as_str()],
                };
                let path = format!("/{}", expected.join("/"));
                let req = build(
                    http::Request::get(&path)
                        .body(Vec::new())
                        .map_err(kube::core::request::Error::BuildRequest),
                )?;
                check_request(&req, http::Method::GET, &expected, None)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Even if a name slipped past `cluster::resources`, the built request would not go out.
    #[test]
    fn a_request_that_is_not_the_authorized_one_is_refused() {
        let cm = ResourceType::v1("", "ConfigMap", "configmaps", true);
        let at = cm.collection(Some("kube-system"));
        let base = collection_path(at);
        let get = |name: &str| {
            let req = build(Request::new(&base).get(name, &GetParams::default())).expect("built");
            check_request(&req, http::Method::GET, &segments(at, Some(name)), None)
        };
        assert!(get("kubeadm-config").is_ok());
        for name in [
            "x/../../secrets/admin-token",
            "kubeadm-config?watch=true",
            "a?x=/namespaces/y",
        ] {
            let err = get(name).expect_err(name);
            assert!(
                err.message.starts_with("kube: refusing to send GET"),
                "{}",
                err.message
            );
        }
        let list = build(Request::new(&base).list(&ListParams::default().labels("a=b"))).expect("built");
        let collection = segments(at, None);
        assert!(check_request(&list, http::Method::GET, &collection, Some("a=b")).is_ok());
        assert!(check_request(&list, http::Method::GET, &collection, Some("a=c")).is_err());
        assert!(check_request(&list, http::Method::DELETE, &collection, Some("a=b")).is_err());
    }
}
