//! The per-call sandbox: a store's state holding WASI (which grants nothing), the phase's
//! capabilities and its limits. The WIT `Host` traits are implemented here by delegating to the
//! capabilities, which do the grant checks. Every host call goes through [`State::traced`], where
//! a run's trace (`--record`, `plugin replay`) sees it.

use crate::bindings::wasmadm::plugin::{etcd, exec, files, health, keys, kube, log, types};
use crate::caps::etcd::EtcdCap;
use crate::caps::exec::ExecCap;
use crate::caps::fs::FsCap;
use crate::caps::health::HealthCap;
use crate::caps::keys::KeysCap;
use crate::caps::kube::{ClientHandle, Credential, KubeCap};
use crate::caps::log::{LogCap, PluginOutput};
use crate::cluster::{self, Collection, Patch, ResourceType};
use crate::runtime::trace::{Answer, Bytes, Tape};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wasmtime::ResourceLimiter;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::cli::WasiCliView;
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::cli::environment;
use wasmtime_wasi::p2::bindings::clocks::{monotonic_clock, wall_clock};
use wasmtime_wasi::p2::bindings::random::{insecure, insecure_seed, random};
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
    /// The run's trace, when it records or replays.
    pub tape: Option<Tape>,
}

impl State {
    /// A host call, seen by the run's trace: recorded with its result, or answered from the
    /// recording without running `live` (a replay, which stops the plugin at the first call
    /// that differs from the recorded one).
    fn traced<R: Serialize + DeserializeOwned>(
        &mut self,
        interface: &str,
        function: &str,
        args: impl FnOnce() -> Value,
        live: impl FnOnce(&mut Self) -> R,
    ) -> wasmtime::Result<R> {
        self.traced_with(interface, function, args, true, |s| Ok(live(s)))
    }

    /// Console output: it runs in a replay too (the replay shows what the plugin printed), and its
    /// arguments are compared with the recording's all the same.
    fn shown(
        &mut self,
        function: &str,
        args: impl FnOnce() -> Value,
        live: impl FnOnce(&mut Self),
    ) -> wasmtime::Result<()> {
        self.traced_with("log", function, args, false, |s| {
            live(s);
            Ok(())
        })
    }

    /// As [`State::traced`] for a fallible `live`; `answer: false` runs it also in a replay.
    fn traced_with<R: Serialize + DeserializeOwned>(
        &mut self,
        interface: &str,
        function: &str,
        args: impl FnOnce() -> Value,
        answer: bool,
        live: impl FnOnce(&mut Self) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let Some(tape) = self.tape.as_mut() else {
            return live(self);
        };
        match tape.call(interface, function, args())? {
            Answer::Recorded(recorded) if answer => serde_json::from_value(recorded).map_err(|e| {
                wasmtime::Error::msg(format!(
                    "the trace's result of {interface}.{function} does not fit this host: {e}"
                ))
            }),
            _ => {
                let result = live(self)?;
                if let Some(tape) = self.tape.as_mut() {
                    tape.result(serde_json::to_value(&result)?)?;
                }
                Ok(result)
            }
        }
    }

    fn replaying(&self) -> bool {
        self.tape.as_ref().is_some_and(Tape::replaying)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The WASI interfaces a plugin reads the world through (clocks, random, environment), seen by
/// the run's trace as the host calls are.
///
/// The monotonic clock is also bounded by the call's deadline ([`crate::deadline`]): a guest
/// blocked in `wasi:io/poll` is in the host, where the epoch deadline cannot interrupt it. A timer
/// that would go off after the deadline ends the call at the deadline instead: the host waits
/// until then and traps as the epoch would (no sandboxed pollable can become ready sooner: sockets
/// and files are not available, stdin is closed and output streams are always ready). In a
/// replay, timers go off at once: time is what the recording says.
pub struct TracedWasi<'a>(&'a mut State);

impl HasData for TracedWasi<'static> {
    type Data<'a> = TracedWasi<'a>;
}

impl TracedWasi<'_> {
    pub fn of(state: &mut State) -> TracedWasi<'_> {
        TracedWasi(state)
    }
}

impl monotonic_clock::Host for TracedWasi<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        let clock = "wasi:clocks/monotonic-clock";
        self.0.traced_with(
            clock,
            "now",
            || Value::Null,
            true,
            |s| monotonic_clock::Host::now(&mut s.clocks()),
        )
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        monotonic_clock::Host::resolution(&mut self.0.clocks())
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let now = self.now()?;
        self.subscribe_duration(when.saturating_sub(now))
    }

    fn subscribe_duration(&mut self, nanos: u64) -> wasmtime::Result<Resource<DynPollable>> {
        if self.0.replaying() {
            return monotonic_clock::Host::subscribe_duration(&mut self.0.clocks(), 0);
        }
        if let Some(deadline) = crate::deadline::current() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if std::time::Duration::from_nanos(nanos) >= left {
                std::thread::sleep(left);
                return Err(wasmtime::Trap::Interrupt.into());
            }
        }
        monotonic_clock::Host::subscribe_duration(&mut self.0.clocks(), nanos)
    }
}

impl wall_clock::Host for TracedWasi<'_> {
    fn now(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        let (seconds, nanoseconds) = self.0.traced_with(
            "wasi:clocks/wall-clock",
            "now",
            || Value::Null,
            true,
            |s| {
                let t = wall_clock::Host::now(&mut s.clocks())?;
                Ok((t.seconds, t.nanoseconds))
            },
        )?;
        Ok(wall_clock::Datetime { seconds, nanoseconds })
    }

    fn resolution(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        wall_clock::Host::resolution(&mut self.0.clocks())
    }
}

impl random::Host for TracedWasi<'_> {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        let args = || json!({ "len": len });
        self.0
            .traced_with("wasi:random/random", "get-random-bytes", args, true, |s| {
                random::Host::get_random_bytes(s.wasi.random(), len).map(Bytes)
            })
            .map(|b| b.0)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.0.traced_with(
            "wasi:random/random",
            "get-random-u64",
            || Value::Null,
            true,
            |s| random::Host::get_random_u64(s.wasi.random()),
        )
    }
}

impl insecure::Host for TracedWasi<'_> {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        let args = || json!({ "len": len });
        self.0
            .traced_with(
                "wasi:random/insecure",
                "get-insecure-random-bytes",
                args,
                true,
                |s| insecure::Host::get_insecure_random_bytes(s.wasi.random(), len).map(Bytes),
            )
            .map(|b| b.0)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.0.traced_with(
            "wasi:random/insecure",
            "get-insecure-random-u64",
            || Value::Null,
            true,
            |s| insecure::Host::get_insecure_random_u64(s.wasi.random()),
        )
    }
}

impl insecure_seed::Host for TracedWasi<'_> {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        self.0.traced_with(
            "wasi:random/insecure-seed",
            "insecure-seed",
            || Value::Null,
            true,
            |s| insecure_seed::Host::insecure_seed(s.wasi.random()),
        )
    }
}

impl environment::Host for TracedWasi<'_> {
    fn get_environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        self.0.traced_with(
            "wasi:cli/environment",
            "get-environment",
            || Value::Null,
            true,
            |s| environment::Host::get_environment(&mut s.cli()),
        )
    }

    fn get_arguments(&mut self) -> wasmtime::Result<Vec<String>> {
        environment::Host::get_arguments(&mut self.0.cli())
    }

    fn initial_cwd(&mut self) -> wasmtime::Result<Option<String>> {
        environment::Host::initial_cwd(&mut self.0.cli())
    }
}

impl types::Host for State {}

type Traced<T, E> = wasmtime::Result<Result<T, E>>;

impl files::Host for State {
    fn read(&mut self, path: String) -> Traced<Vec<u8>, files::FileError> {
        let args = || json!({ "path": path });
        let read = self.traced("files", "read", args, |s| s.files.read(&path).map(Bytes))?;
        Ok(read.map(|b| b.0))
    }
    fn write(&mut self, path: String, contents: Vec<u8>, mode: u32) -> Traced<(), files::FileError> {
        let args = || json!({ "path": path, "contents": Bytes(contents.clone()), "mode": mode });
        self.traced("files", "write", args, |s| s.files.write(&path, &contents, mode))
    }
    fn stat(&mut self, path: String) -> Traced<files::Metadata, files::FileError> {
        self.traced(
            "files",
            "stat",
            || json!({ "path": path }),
            |s| s.files.metadata(&path),
        )
    }
    fn list_dir(&mut self, path: String) -> Traced<Vec<String>, files::FileError> {
        self.traced(
            "files",
            "list-dir",
            || json!({ "path": path }),
            |s| s.files.list_dir(&path),
        )
    }
    fn create_dir(&mut self, path: String, mode: u32) -> Traced<(), files::FileError> {
        let args = || json!({ "path": path, "mode": mode });
        self.traced("files", "create-dir", args, |s| s.files.create_dir(&path, mode))
    }
    fn remove(&mut self, path: String, recursive: bool) -> Traced<(), files::FileError> {
        let args = || json!({ "path": path, "recursive": recursive });
        self.traced("files", "remove", args, |s| s.files.remove(&path, recursive))
    }
}

impl exec::Host for State {
    fn run(&mut self, cmd: exec::Command) -> Traced<exec::Output, exec::ExecError> {
        let args = || {
            let exec::Command {
                program,
                args,
                env,
                stdin,
            } = &cmd;
            json!({ "program": program, "args": args, "env": env, "stdin": stdin.clone().map(Bytes) })
        };
        let ran = self.traced("exec", "run", args, |s| {
            s.exec.run(cmd.clone(), &s.files).map(OutputText::from)
        })?;
        Ok(ran.map(exec::Output::from))
    }
}

/// `exec::Output` in a trace, with the output as text.
#[derive(Serialize, serde::Deserialize)]
struct OutputText {
    status: Option<i32>,
    stdout: Bytes,
    stderr: Bytes,
    truncated: bool,
    recorded: bool,
}

impl From<exec::Output> for OutputText {
    fn from(o: exec::Output) -> Self {
        Self {
            status: o.status,
            stdout: Bytes(o.stdout),
            stderr: Bytes(o.stderr),
            truncated: o.truncated,
            recorded: o.recorded,
        }
    }
}

impl From<OutputText> for exec::Output {
    fn from(o: OutputText) -> Self {
        Self {
            status: o.status,
            stdout: o.stdout.0,
            stderr: o.stderr.0,
            truncated: o.truncated,
            recorded: o.recorded,
        }
    }
}

impl health::Host for State {
    fn get(&mut self, url: String, timeout_ms: u32) -> Traced<health::Response, health::HealthError> {
        let args = || json!({ "url": url, "timeoutMs": timeout_ms });
        self.traced("health", "get", args, |s| s.health.get(&url, timeout_ms))
    }
}

impl keys::Host for State {
    fn generate(&mut self, algorithm: keys::Algorithm, count: u32) -> Traced<Vec<String>, keys::KeyError> {
        let args = || json!({ "algorithm": algorithm, "count": count });
        self.traced("keys", "generate", args, |s| s.keys.generate(algorithm, count))
    }
}

impl etcd::Host for State {
    fn member_list(&mut self, endpoint: String) -> Traced<Vec<etcd::Member>, etcd::EtcdError> {
        let args = || json!({ "endpoint": endpoint });
        self.traced("etcd", "member-list", args, |s| s.etcd.member_list(&endpoint))
    }
    fn member_add_learner(
        &mut self,
        endpoint: String,
        peer_urls: Vec<String>,
    ) -> Traced<(etcd::Member, Vec<etcd::Member>), etcd::EtcdError> {
        let args = || json!({ "endpoint": endpoint, "peerUrls": peer_urls });
        self.traced("etcd", "member-add-learner", args, |s| {
            s.etcd.member_add_learner(&endpoint, peer_urls.clone())
        })
    }
    fn member_promote(&mut self, endpoint: String, id: u64) -> Traced<(), etcd::EtcdError> {
        let args = || json!({ "endpoint": endpoint, "id": id });
        self.traced("etcd", "member-promote", args, |s| {
            s.etcd.member_promote(&endpoint, id)
        })
    }
    fn member_remove(&mut self, endpoint: String, id: u64) -> Traced<(), etcd::EtcdError> {
        let args = || json!({ "endpoint": endpoint, "id": id });
        self.traced("etcd", "member-remove", args, |s| {
            s.etcd.member_remove(&endpoint, id)
        })
    }
    fn health(&mut self, endpoint: String) -> Traced<(), etcd::EtcdError> {
        let args = || json!({ "endpoint": endpoint });
        self.traced("etcd", "health", args, |s| s.etcd.health(&endpoint))
    }
}

impl log::Host for State {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let args = || json!({ "level": level, "message": message });
        self.shown("log", args, |s| {
            let level = match level {
                log::Level::Trace => tracing::Level::TRACE,
                log::Level::Debug => tracing::Level::DEBUG,
                log::Level::Info => tracing::Level::INFO,
                log::Level::Warn => tracing::Level::WARN,
                log::Level::Error => tracing::Level::ERROR,
            };
            s.log.log(level, &message);
        })
    }
    fn print(&mut self, line: String) -> wasmtime::Result<()> {
        let args = || json!({ "line": line });
        self.shown("print", args, |s| s.log.print(&line))
    }
    fn report(&mut self, finding: types::Finding) -> wasmtime::Result<()> {
        let args = || json!({ "finding": finding });
        self.shown("report", args, |s| s.log.report(finding.clone()))
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

fn resource_type(t: &kube::ResourceType) -> ResourceType {
    ResourceType {
        group: t.group.clone(),
        version: t.version.clone(),
        kind: t.kind.clone(),
        plural: t.plural.clone(),
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

/// A client handle in a replay: its calls are answered from the trace, so the cluster behind it
/// (an empty in-memory one) is never asked.
fn replayed_client() -> ClientHandle {
    ClientHandle {
        cluster: std::sync::Arc::new(cluster::memory::MemoryCluster::new()),
        kubeconfig: None,
        identity: None,
        ca_pem: None,
    }
}

impl kube::Host for State {
    fn cluster(&mut self) -> Traced<Resource<ClientHandle>, kube::ApiError> {
        let mut client = None;
        let connected = self.traced(
            "kube",
            "cluster",
            || Value::Null,
            |s| s.kube.connect().map(|c| client = Some(c)).map_err(to_wit),
        )?;
        Ok(connected.and_then(|()| self.push_client(client.unwrap_or_else(replayed_client))))
    }

    fn cluster_as(&mut self, kubeconfig: String) -> Traced<Resource<ClientHandle>, kube::ApiError> {
        let mut client = None;
        let args = || json!({ "kubeconfig": kubeconfig });
        let connected = self.traced("kube", "cluster-as", args, |s| {
            s.kube
                .connect_as(&kubeconfig)
                .map(|c| client = Some(c))
                .map_err(to_wit)
        })?;
        Ok(connected.and_then(|()| self.push_client(client.unwrap_or_else(replayed_client))))
    }

    fn connect(
        &mut self,
        server: String,
        ca: Option<String>,
        identity: kube::Identity,
    ) -> Traced<Resource<ClientHandle>, kube::ApiError> {
        let mut client = None;
        let args = || json!({ "server": server, "ca": ca, "identity": identity });
        let connected = self.traced("kube", "connect", args, |s| {
            let credential = match identity.clone() {
                kube::Identity::Anonymous => Credential::Anonymous,
                kube::Identity::BootstrapToken(token) => Credential::BootstrapToken(token),
            };
            s.kube
                .connect_to(&server, ca.as_deref(), credential)
                .map(|c| client = Some(c))
                .map_err(to_wit)
        })?;
        Ok(connected.and_then(|()| self.push_client(client.unwrap_or_else(replayed_client))))
    }
}

impl State {
    /// One `kube.client` method: traced as `client.<method>` with the client, the type, the
    /// namespace and the method's own arguments (`more`), then run as `call` with the handle's
    /// client and the collection addressed.
    fn client_call<R: Serialize + DeserializeOwned>(
        &mut self,
        method: &str,
        (me, ty, namespace): (&Resource<ClientHandle>, &kube::ResourceType, &Option<String>),
        more: impl FnOnce() -> Value,
        call: impl FnOnce(&KubeCap, &ClientHandle, Collection<'_>) -> Result<R, kube::ApiError>,
    ) -> Traced<R, kube::ApiError> {
        let args = || {
            let mut args = json!({ "client": me.rep(), "type": ty, "namespace": namespace });
            if let (Some(args), Value::Object(more)) = (args.as_object_mut(), more()) {
                args.extend(more);
            }
            args
        };
        self.traced("kube", &format!("client.{method}"), args, |s| {
            let c = s.client(me)?;
            call(&s.kube, c, resource_type(ty).collection(namespace.as_deref()))
        })
    }
}

/// `client.create` and `client.update`: the WIT contract's two writes of a whole object, the same
/// but for the verb (the `KubeCap` method of the same name).
macro_rules! write_object {
    ($($verb:ident),*) => {$(
        fn $verb(
            &mut self,
            me: Resource<ClientHandle>,
            ty: kube::ResourceType,
            namespace: Option<String>,
            object: String,
        ) -> Traced<String, kube::ApiError> {
            let more = || json!({ "object": object });
            self.client_call(stringify!($verb), (&me, &ty, &namespace), more, |kube, c, at| {
                let object = parse_object(&object)?;
                KubeCap::$verb(kube, c, at, object).map(to_text).map_err(to_wit)
            })
        }
    )*};
}

impl kube::HostClient for State {
    fn get(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        name: String,
    ) -> Traced<String, kube::ApiError> {
        let more = || json!({ "name": name });
        self.client_call("get", (&me, &ty, &namespace), more, |kube, c, at| {
            kube.get(c, at, &name).map(to_text).map_err(to_wit)
        })
    }

    fn list(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Traced<String, kube::ApiError> {
        let more = || json!({ "labelSelector": label_selector });
        self.client_call("list", (&me, &ty, &namespace), more, |kube, c, at| {
            let selector = label_selector.as_deref();
            kube.list(c, at, selector).map(to_text).map_err(to_wit)
        })
    }

    write_object!(create, update);

    fn patch(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        name: String,
        kind: kube::PatchType,
        patch: String,
    ) -> Traced<String, kube::ApiError> {
        let more = || json!({ "name": name, "kind": kind, "patch": patch });
        self.client_call("patch", (&me, &ty, &namespace), more, |kube, c, at| {
            let patch = parse_object(&patch)?;
            let patch = match kind {
                kube::PatchType::Merge => Patch::Merge(patch),
                kube::PatchType::StrategicMerge => Patch::StrategicMerge(patch),
            };
            kube.patch(c, at, &name, patch).map(to_text).map_err(to_wit)
        })
    }

    fn delete(
        &mut self,
        me: Resource<ClientHandle>,
        ty: kube::ResourceType,
        namespace: Option<String>,
        name: String,
    ) -> Traced<(), kube::ApiError> {
        let more = || json!({ "name": name });
        self.client_call("delete", (&me, &ty, &namespace), more, |kube, c, at| {
            kube.delete(c, at, &name).map_err(to_wit)
        })
    }

    fn drop(&mut self, me: Resource<ClientHandle>) -> wasmtime::Result<()> {
        self.table.delete(me)?;
        Ok(())
    }
}
