//! A real API server, through the `kube` crate, with the credentials of a kubeconfig file.
//!
//! The client is created on first use: during `init` the kubeconfig (`admin.conf`) is written by
//! an earlier phase of the same run, as with kubeadm. Calls are blocking for the plugin; the
//! async client runs on a runtime owned by this backend.

use super::{ApiError, ApiErrorCode, Cluster, PatchKind, ResourceType};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A real cluster reached with a kubeconfig file.
pub struct RealCluster {
    kubeconfig: PathBuf,
    runtime: tokio::runtime::Runtime,
    client: OnceLock<Result<kube::Client, ApiError>>,
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

    fn api(&self, ty: &ResourceType, namespace: Option<&str>) -> Result<Api<DynamicObject>, ApiError> {
        let client = self.client()?;
        let resource = ApiResource {
            group: ty.group.clone(),
            version: ty.version.clone(),
            api_version: ty.api_version(),
            kind: ty.kind.clone(),
            plural: ty.plural.clone(),
        };
        Ok(match (ty.namespaced, namespace) {
            (true, Some(ns)) if !ns.is_empty() => Api::namespaced_with(client, ns, &resource),
            _ => Api::all_with(client, &resource),
        })
    }
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

impl Cluster for RealCluster {
    fn with_credentials(self: Arc<Self>, kubeconfig: &Path) -> Result<Arc<dyn Cluster>, ApiError> {
        let other = RealCluster::new(kubeconfig.to_path_buf()).map_err(|e| {
            ApiError::new(ApiErrorCode::Unavailable, 0, format!("cannot start an API client: {e}"))
        })?;
        Ok(Arc::new(other))
    }

    fn get(&self, ty: &ResourceType, namespace: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let api = self.api(ty, namespace)?;
        self.runtime
            .block_on(api.get(name))
            .map_err(convert)
            .and_then(to_value)
    }

    fn list(
        &self,
        ty: &ResourceType,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Value, ApiError> {
        let api = self.api(ty, namespace)?;
        let mut params = ListParams::default();
        if let Some(s) = label_selector {
            params = params.labels(s);
        }
        let list = self.runtime.block_on(api.list(&params)).map_err(convert)?;
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
        let api = self.api(ty, namespace)?;
        let object = from_value(object)?;
        self.runtime
            .block_on(api.create(&post_params(dry_run), &object))
            .map_err(convert)
            .and_then(to_value)
    }

    fn update(
        &self,
        ty: &ResourceType,
        namespace: Option<&str>,
        object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let api = self.api(ty, namespace)?;
        let object = from_value(object)?;
        let name = object.metadata.name.clone().unwrap_or_default();
        self.runtime
            .block_on(api.replace(&name, &post_params(dry_run), &object))
            .map_err(convert)
            .and_then(to_value)
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
        let api = self.api(ty, namespace)?;
        let params = PatchParams {
            dry_run,
            field_manager: Some("wasmadm".into()),
            ..PatchParams::default()
        };
        let patch = match kind {
            PatchKind::Merge => Patch::Merge(patch),
            PatchKind::StrategicMerge => Patch::Strategic(patch),
        };
        self.runtime
            .block_on(api.patch(name, &params, &patch))
            .map_err(convert)
            .and_then(to_value)
    }

    fn delete(
        &self,
        ty: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let api = self.api(ty, namespace)?;
        let params = DeleteParams {
            dry_run,
            ..DeleteParams::default()
        };
        self.runtime
            .block_on(api.delete(name, &params))
            .map(|_| ())
            .map_err(convert)
    }
}
