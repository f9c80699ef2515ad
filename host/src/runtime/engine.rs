//! The Wasmtime engine, the linker with every host interface, the on-disk cache of compiled
//! components, and plugin loading (digest check, compile or deserialize, type-check once).

use super::cache::Cache;
use super::sandbox::{Limiter, State, TracedWasi};
use crate::bindings::{Phase, PhasePre, PluginInfo};
use sha2::{Digest as _, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

/// How often the epoch advances: the granularity of phase timeouts.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read component {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "component {path} has digest sha256:{actual}, but the pipeline pins sha256:{expected}; \
         it was not loaded. If the new file is trusted, update `digest:` in the pipeline file"
    )]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{name} is not a valid wasmadm plugin component: {message}")]
    Invalid { name: String, message: String },
    #[error("engine setup failed: {0}")]
    Engine(String),
}

/// A compiled, type-checked plugin, ready to instantiate.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// A name for messages: `builtin:preflight` or the file path.
    pub source: String,
    /// sha256 of the component bytes, hex.
    pub digest: String,
    pub pre: PhasePre<State>,
}

/// The engine, linker and component cache shared by every phase of a run.
pub struct Runtime {
    pub engine: Engine,
    linker: Linker<State>,
    cache: Option<Cache>,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// A runtime that caches compiled components in `cache_dir` (none: compile every time).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, LoadError> {
        let engine_err = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::default();
        // A run executes one phase at a time; a few slots leave room for tests and benchmarks
        // that run phases side by side. Each slot reserves address space, not memory.
        pool.total_component_instances(64)
            .total_core_instances(512)
            .total_memories(128)
            .total_tables(512)
            .max_memories_per_component(8)
            .max_memory_size(crate::values::MAX_MEMORY as usize);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            // The wide-arithmetic proposal: the default plugins use `i64.mul_wide_u` for their
            // big-integer crypto (see crates/wasm-build); plugins without it run unchanged.
            .wasm_wide_arithmetic(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(engine_err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_err)?;
        // WASI's clocks, random and environment again, seen by the run's trace (and the
        // monotonic clock's sleeps bounded by the call's deadline): see `TracedWasi`.
        linker.allow_shadowing(true);
        {
            use wasmtime_wasi::p2::bindings::{cli, clocks, random};
            let l = &mut linker;
            type W = TracedWasi<'static>;
            clocks::monotonic_clock::add_to_linker::<State, W>(l, TracedWasi::of).map_err(engine_err)?;
            clocks::wall_clock::add_to_linker::<State, W>(l, TracedWasi::of).map_err(engine_err)?;
            random::random::add_to_linker::<State, W>(l, TracedWasi::of).map_err(engine_err)?;
            random::insecure::add_to_linker::<State, W>(l, TracedWasi::of).map_err(engine_err)?;
            random::insecure_seed::add_to_linker::<State, W>(l, TracedWasi::of).map_err(engine_err)?;
            cli::environment::add_to_linker::<State, W>(l, TracedWasi::of).map_err(engine_err)?;
        }
        linker.allow_shadowing(false);
        Phase::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s).map_err(engine_err)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticking, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("wasmadm-epoch".into())
            .spawn(move || {
                // The epoch follows the wall clock: a tick delayed by a busy machine is caught up
                // at once, so a deadline of N ticks never stretches past N * EPOCH_TICK.
                let started = std::time::Instant::now();
                let mut ticks: u128 = 0;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    let due = started.elapsed().as_nanos() / EPOCH_TICK.as_nanos();
                    while ticks < due {
                        ticking.increment_epoch();
                        ticks += 1;
                    }
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;
        let cache = cache_dir.and_then(|dir| match Cache::open(&dir) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!(cache = %dir.display(), "not using the compiled-code cache: {e}");
                None
            }
        });
        Ok(Self {
            engine,
            linker,
            cache,
            stop_ticker,
        })
    }

    /// The default cache directory: `$WASMADM_CACHE_DIR`, else `$XDG_CACHE_HOME/wasmadm`, else
    /// `$HOME/.cache/wasmadm`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        env("WASMADM_CACHE_DIR")
            .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("wasmadm")))
            .or_else(|| env("HOME").map(|p| p.join(".cache/wasmadm")))
    }

    /// Loads a component file, refusing it before any parsing when its digest differs from
    /// `expected` (hex).
    pub fn load_file(&self, path: &Path, expected: Option<&str>) -> Result<LoadedPlugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let digest = sha256_hex(&bytes);
        if let Some(expected) = expected
            && !expected.eq_ignore_ascii_case(&digest)
        {
            return Err(LoadError::DigestMismatch {
                path: path.to_path_buf(),
                expected: expected.to_string(),
                actual: digest,
            });
        }
        self.load_bytes(&path.display().to_string(), &bytes, digest)
    }

    /// Loads component bytes (a built-in plugin, or a file already read and checked).
    pub fn load_bytes(&self, source: &str, bytes: &[u8], digest: String) -> Result<LoadedPlugin, LoadError> {
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            name: source.to_string(),
            message: format!("{e:#}"),
        };
        let component = self.compile_cached(source, bytes, &digest).map_err(invalid)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = PhasePre::new(instance_pre).map_err(invalid)?;
        Ok(LoadedPlugin {
            source: source.to_string(),
            digest,
            pre,
        })
    }

    /// The engine's compatibility hash, as a cache key part.
    fn compat(&self) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    fn compile_cached(&self, source: &str, bytes: &[u8], digest: &str) -> wasmtime::Result<Component> {
        let compat = self.compat();
        if let Some(cache) = &self.cache
            && let Some(artifact) = cache.get(digest, &compat)
        {
            // SAFETY: the artifact's MAC verified: this user's wasmadm compiled it from the
            // component with this digest for this engine configuration, and these are the bytes
            // that were checked. `deserialize` still checks the header.
            match unsafe { Component::deserialize(&self.engine, &artifact) } {
                Ok(component) => {
                    tracing::debug!(%source, "loaded compiled component from cache");
                    return Ok(component);
                }
                Err(e) => tracing::warn!(%source, "ignoring unusable cache entry: {e:#}"),
            }
        }
        let started = std::time::Instant::now();
        let component = Component::new(&self.engine, bytes)?;
        tracing::debug!(%source, elapsed = ?started.elapsed(), "compiled component");
        if let Some(cache) = &self.cache {
            match component.serialize() {
                Ok(artifact) => {
                    if let Err(e) = cache.put(digest, &compat, &artifact) {
                        tracing::warn!("cannot write component cache: {e}");
                    }
                }
                Err(e) => tracing::warn!("cannot serialize component: {e:#}"),
            }
        }
        Ok(component)
    }

    /// A store with the given state, memory limit and a deadline `timeout` from now.
    pub fn store(&self, state: State, timeout: Duration) -> Store<State> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter as &mut dyn wasmtime::ResourceLimiter);
        let ticks = timeout.as_millis().div_ceil(EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }

    /// Calls `describe` in a sandbox with no grants at all.
    pub fn describe(&self, plugin: &LoadedPlugin, state: State) -> Result<PluginInfo, String> {
        let timeout = Duration::from_secs(10);
        let mut store = self.store(state, timeout);
        crate::deadline::scope(std::time::Instant::now() + timeout, || {
            let phase = plugin.pre.instantiate(&mut store).map_err(|e| format!("{e:#}"))?;
            phase
                .wasmadm_plugin_plugin()
                .call_describe(&mut store)
                .map_err(|e| explain_trap(&e, &store.data().limiter, timeout))
        })
    }
}

/// sha256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A trap as a sentence: which limit was hit, or what the plugin did.
pub fn explain_trap(e: &wasmtime::Error, limiter: &Limiter, timeout: Duration) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>()
        && *trap == wasmtime::Trap::Interrupt
    {
        return format!("the plugin did not finish within its timeout of {timeout:?} and was stopped");
    }
    if limiter.memory_exceeded {
        return format!(
            "the plugin exceeded its memory limit of {} MiB and was stopped ({e})",
            limiter.memory_bytes >> 20
        );
    }
    format!("the plugin crashed: {e:#}")
}
