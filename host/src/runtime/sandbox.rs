//! The per-call sandbox: a store's state holding WASI (which grants nothing), the phase's
//! capabilities and its limits. The WIT `Host` traits are implemented here by delegating to the
//! capabilities, which do the grant checks.

use crate::bindings::wasmadm::plugin::{etcd, exec, files, health, keys, kube, log, types};
use crate::caps::etcd::EtcdCap;
use crate::caps::exec::ExecCap;
use crate::caps::fs::FsCap;
use crate::caps::health::HealthCap;
use crate::caps::keys::KeysCap;
use crate::caps::kube::{ClientHandle, Credential, KubeCap};
use crate::caps::log::{LogCap, PluginOutput};
use crate::cluster::{self, PatchKind, ResourceType};
use wasmtime::ResourceLimiter;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::clocks::{WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Memory and table limits that remember which one a plugin ran into, so the error can say so.
pub struct Limiter {
    pub memory_bytes: usize,
    pub memory_exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Everything one plugin call can reach.
pub struct State {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: Limiter,
    pub files: FsCap,
    pub exec: ExecCap,
    pub kube: KubeCap,
    pub health: HealthCap,
    pub keys: KeysCap,
    pub etcd: EtcdCap,
    pub log: LogCap,
    pub stdout: PluginOutput,
    pub stderr: PluginOutput,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// WASI's monotonic clock, bounded by the call's deadline ([`crate::deadline`]): a guest blocked
/// in `wasi:io/poll` is in the host, where the epoch deadline cannot interrupt it. A timer that
/// would go off after the deadline ends the call at the deadline instead: the host waits until
/// then and traps as the epoch would (no sandboxed pollable can become ready sooner: sockets and
/// files are not available, stdin is closed and output streams are always ready).
pub struct BoundedClock<'a>(WasiClocksCtxView<'a>);

impl HasData for BoundedClock<'static> {
    type Data<'a> = BoundedClock<'a>;
}

impl BoundedClock<'_> {
    pub fn of(state: &mut State) -> BoundedClock<'_> {
        BoundedClock(state.clocks())
    }
}

impl monotonic_clock::Host for BoundedClock<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        monotonic_clock::Host::now(&mut self.0)
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        monotonic_clock::Host::resolution(&mut self.0)
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let now = monotonic_clock::Host::now(&mut self.0)?;
        self.subscribe_duration(when.saturating_sub(now))
    }

    fn subscribe_duration(&mut self, nanos: u64) -> wasmtime::Result<Resource<DynPollable>> {
        if let Some(deadline) = crate::deadline::current() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if std::time::Duration::from_nanos(nanos) >= left {
                std::thread::sleep(left);
                return Err(wasmtime::Trap::Interrupt.into());
            }
        }
        monotonic_clock::Host::subscribe_duration(&mut self.0, nanos)
    }
}

impl types::Host for State {}

impl files::Host for State {
    fn read(&mut self, path: String) -> Result<Vec<u8>, files::FileError> {
        self.files.read(&path)
    }
    fn write(&mut self, path: String, contents: Vec<u8>, mode: u32) -> Result<(), files::FileError> {
        self.files.write(&path, &contents, mode)
    }
    fn stat(&mut self, path: String) -> Result<files::Metadata, files::FileError> {
        self.files.metadata(&path)
    }
    fn list_dir(&mut self, path: String) -> Result<Vec<String>, files::FileError> {
        self.files.list_dir(&path)
    }
    fn create_dir(&mut self, path: String, mode: u32) -> Result<(), files::FileError> {
        self.files.create_dir(&path, mode)
    }
    fn remove(&mut self, path: String, recursive: bool) -> Result<(), files::FileError> {
        self.files.remove(&path, recursive)
    }
}

impl exec::Host for State {
    fn run(&mut self, cmd: exec::Command) -> Result<exec::Output, exec::ExecError> {
        self.exec.run(cmd, &self.files)
    }
}

impl health::Host for State {
    fn get(&mut self, url: String, timeout_ms: u32) -> Result<health::Response, health::HealthError> {
        self.health.get(&url, timeout_ms)
    }
}

impl keys::Host for State {
    fn generate(&mut self, algorithm: keys::Algorithm, count: u32) -> Result<Vec<String>, keys::KeyError> {
        self.keys.generate(algorithm, count)
    }
}

impl etcd::Host for State {
    fn member_list(&mut self, endpoint: String) -> Result<Vec<etcd::Member>, etcd::EtcdError> {
        self.etcd.member_list(&endpoint)
    }
    fn member_add_learner(
        &mut self,
        endpoint: String,
        peer_urls: Vec<String>,
    ) -> Result<(etcd::Member, Vec<etcd::Member>), etcd::EtcdError> {
        self.etcd.member_add_learner(&endpoint, peer_urls)
    }
    fn member_promote(&mut self, endpoint: String, id: u64) -> Result<(), etcd::EtcdError> {
        self.etcd.member_promote(&endpoint, id)
    }
    fn member_remove(&mut self, endpoint: String, id: u64) -> Result<(), etcd::EtcdError> {
        self.etcd.member_remove(&endpoint, id)
    }
    fn health(&mut self, endpoint: String) -> Result<(), etcd::EtcdError> {
        self.etcd.health(&endpoint)
    }
}

impl log::Host for State {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        self.log.log(level, &message);
    }
    fn print(&mut self, line: String) {
        self.log.print(&line);
    }
    fn report(&mut self, finding: types::Finding) {
        self.log.report(finding);
    }
}

fn to_wit(e: cluster::ApiError) -> kube::ApiError {
    use cluster::ApiErrorCode as C;
    let code = match e.code {
        C::Denied => kube::ErrorCode::Denied,
        C::Forbidden => kube::ErrorCode::Forbidden,
        C::NotFound => kube::ErrorCode::NotFound,
        C::AlreadyExists => kube::ErrorCode::AlreadyExists,
        C::Conflict => kube::ErrorCode::Conflict,
        C::Invalid => kube::ErrorCode::Invalid,
        C::Unavailable => kube::ErrorCode::Unavailable,
        C::Other => kube::ErrorCode::Other,
    };
    kube::ApiError {
        code,
        status: e.status,
        message: e.message,
    }
}

fn resource_type(t: kube::ResourceType) -> ResourceType {
    ResourceType {
        group: t.group,
        version: t.version,
        kind: t.kind,
        plural: t.plural,
        namespaced: t.namespaced,
    }
}

/// Parses an object or patch from the plugin, refusing before parsing what the API server would
/// refuse as too large.
fn parse_object(text: &str) -> Result<serde_json::Value, kube::ApiError> {
    if text.len() > cluster::resources::MAX_OBJECT_BYTES {
        return Err(kube::ApiError {
            code: kube::ErrorCode::Invalid,
            status: 0,
            message: format!(
                "kube: the object is {} bytes, more than the API server's limit of {} bytes",
                text.len(),
                cluster::resources::MAX_OBJECT_BYTES
            ),
        });
    }
    serde_json::from_str(text).map_err(|e| kube::ApiError {
        code: kube::ErrorCode::Invalid,
        status: 0,
        message: format!("the object is not valid JSON: {e}"),
    })
}

fn to_text(v: serde_json::Value) -> String {
    v.to_string()
}

impl State {
    fn client(&self, handle: &Resource<ClientHandle>) -> Result<&ClientHandle, kube::ApiError> {
        self.table.get(handle).map_err(|e| kube::ApiError {
            code: kube::ErrorCode::Other,
            status: 0,
            message: format!("invalid client handle: {e}"),
        })
    }
}

impl State {
    fn push_client(&mut self, client: ClientHandle) -> Result<Resource<ClientHandle>, kube::ApiError> {
        self.table.push(client).map_err(|e| kube::ApiError {
            code: kube::ErrorCode::Other,
            status: 0,
            message: format!("too many client handles: {e}"),
        })
    }
}

impl kube::Host for State {
    fn cluster(&mut self) -> Result<Resource<ClientHandle>, kube::ApiError> {
        let client = self.kube.connect().map_err(to_wit)?;
        self.push_client(client)
    }

    fn cluster_as(&mut self, kubeconfig: String) -> Result<Resource<ClientHandle>, kube::ApiError> {
        let client = self.kube.connect_as(&kubeconfig).map_err(to_wit)?;
        self.push_client(client)
    }

    fn connect(
        &mut self,
        server: String,
        ca: Option<String>,
        identity: kube::Identity,
    ) -> Result<Resource<ClientHandle>, kube::ApiError> {
        let credential = match identity {
            kube::Identity::Anonymous => Credential::Anonymous,
            kube::Identity::BootstrapToken(token) => Credential::BootstrapToken(token),
        };
        let client = self
            .kube
            .connect_to(&server, ca.as_deref(), credential)
            .map_err(to_wit)?;
        self.push_client(client)
    }
}

impl kube::HostClient for State {
    fn get(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        name: String,
    ) -> Result<String, kube::ApiError> {
        let c = self.client(&me)?;
        self.kube
            .get(c, &resource_type(ty), namespace.as_deref(), &name)
            .map(to_text)
            .map_err(to_wit)
    }

    fn list(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Result<String, kube::ApiError> {
        let c = self.client(&me)?;
        self.kube
            .list(
                c,
                &resource_type(ty),
                namespace.as_deref(),
                label_selector.as_deref(),
            )
            .map(to_text)
            .map_err(to_wit)
    }

    fn create(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        object: String,
    ) -> Result<String, kube::ApiError> {
        let object = parse_object(&object)?;
        let c = self.client(&me)?;
        self.kube
            .create(c, &resource_type(ty), namespace.as_deref(), object)
            .map(to_text)
            .map_err(to_wit)
    }

    fn update(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        object: String,
    ) -> Result<String, kube::ApiError> {
        let object = parse_object(&object)?;
        let c = self.client(&me)?;
        self.kube
            .update(c, &resource_type(ty), namespace.as_deref(), object)
            .map(to_text)
            .map_err(to_wit)
    }

    fn patch(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        name: String,
        kind: kube::PatchType,
        patch: String,
    ) -> Result<String, kube::ApiError> {
        let patch = parse_object(&patch)?;
        let kind = match kind {
            kube::PatchType::Merge => PatchKind::Merge,
            kube::PatchType::StrategicMerge => PatchKind::StrategicMerge,
        };
        let c = self.client(&me)?;
        self.kube
            .patch(c, &resource_type(ty), namespace.as_deref(), &name, kind, patch)
            .map(to_text)
            .map_err(to_wit)
    }

    fn delete(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        name: String,
    ) -> Result<(), kube::ApiError> {
        let c = self.client(&me)?;
        self.kube
            .delete(c, &resource_type(ty), namespace.as_deref(), &name)
            .map_err(to_wit)
    }

    fn drop(&mut self, me: Resource<ClientHandle>) -> wasmtime::Result<()> {
        self.table.delete(me)?;
        Ok(())
    }
}
