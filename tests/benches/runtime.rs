//! Runtime benchmarks: cold and warm load of the default plugins, instantiate-and-call of one
//! phase, the cost of one host call, and a whole preflight phase on the healthy fixture node.
//!
//! `cargo bench -p wasmadm-tests --bench runtime` prints a table; docs/benchmarks.md records it.
//! A plain timing loop (median of repeated runs) keeps the dependency list short.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmadm::builtin;
use wasmadm::config::pipeline::Pipeline;
use wasmadm::runtime::Runtime;
use wasmadm::runtime::runner::bare_state;
use wasmadm_tests::{PROBE_WASM, Run, node, sha256_file};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn report(name: &str, d: Duration, target: &str) {
    println!("{name:<58} {:>12.3} ms   target {target}", d.as_secs_f64() * 1e3);
}

fn load_all(runtime: &Runtime) {
    for b in builtin::all() {
        runtime.load_bytes(b.name, b.wasm, b.digest()).expect("load");
    }
}

fn main() {
    let cache = tempfile::tempdir().expect("cache");
    let root = node("healthy");
    let root_dir = Arc::new(cap_std_dir(root.path()));

    // Cold: a fresh engine with no cache compiles every default plugin with Cranelift.
    let cold = measure(3, || {
        let rt = Runtime::new(None).expect("runtime");
        load_all(&rt);
    });
    report(
        &format!(
            "cold load, all {} default plugin(s) (compile)",
            builtin::all().len()
        ),
        cold,
        "-",
    );

    // Warm: the compiled artifacts come from the on-disk cache.
    let rt = Runtime::new(Some(cache.path().to_path_buf())).expect("runtime");
    load_all(&rt);
    let warm = measure(20, || load_all(&rt));
    report(
        "warm load, all default plugins (cache + type-check)",
        warm,
        "< 20 ms in all",
    );

    // One phase: new store, instantiate, call `describe`.
    let pre = rt
        .load_bytes("preflight", builtin::all()[0].wasm, builtin::all()[0].digest())
        .expect("load");
    let inst = measure(200, || {
        rt.describe(&pre, bare_state(root_dir.clone())).expect("describe");
    });
    report("new store + instantiate + describe() (preflight)", inst, "< 1 ms");

    // Host call: the probe stats a granted file N times; the difference to N=0 is the host cost.
    let probe = |count: u64| {
        let yaml = format!(
            "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: probe\n    component: {PROBE_WASM}\n    \
             digest: sha256:{}\n    settings: {{action: stat-loop, path: /etc/hosts, count: {count}}}\n    \
             grants: {{files: {{read: [/etc/hosts]}}}}\n",
            sha256_file(PROBE_WASM)
        );
        Pipeline::parse(&yaml, Path::new("bench")).expect("pipeline")
    };
    const CALLS: u64 = 20_000;
    let (zero, many) = (probe(0), probe(CALLS));
    let base = measure(10, || assert!(Run::new(&zero, root.path()).go().result.is_ok()));
    let loaded = measure(10, || assert!(Run::new(&many, root.path()).go().result.is_ok()));
    let per_call = loaded.saturating_sub(base) / CALLS as u32;
    println!(
        "{:<58} {:>12.3} µs   target < 20 µs",
        "one host call (files.stat of a granted path)",
        per_call.as_secs_f64() * 1e6
    );

    // The preflight phase on the healthy node (includes two real processes: kubelet, systemctl).
    let pipeline = Pipeline::builtin_default().expect("pipeline");
    let config = wasmadm_tests::fixture("init-config.yaml");
    let full = measure(10, || {
        let mut run = Run::new(&pipeline, root.path());
        run.config = Some(&config);
        run.only = Some(("preflight".into(), None));
        assert!(run.go().result.is_ok());
    });
    report("init phase preflight on the fixture node", full, "-");
}

fn cap_std_dir(path: &Path) -> cap_std::fs::Dir {
    cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority()).expect("root")
}
