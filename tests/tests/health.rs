//! The `health` capability through the sandbox probe, against real sockets on 127.0.0.1: a URL
//! off the grant is refused before any connection, a granted one returns the server's status and
//! body, and timeouts, refusals, TLS modes, dry-run and the in-memory cluster behave as documented.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmadm::cluster::memory::MemoryCluster;
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::http::{Reply, TestPki, serve};
use wasmadm_tests::{Outcome, PROBE_WASM, Run, node, sha256_file};

/// A one-phase pipeline running the probe's `health` action on `url` with `grants` (YAML flow).
fn probe(url: &str, timeout_ms: u64, grants: &str) -> Pipeline {
    let yaml = format!(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: probe\n    component: {PROBE_WASM}\n    \
         digest: sha256:{}\n    settings: {{action: health, url: \"{url}\", timeoutMs: {timeout_ms}}}\n    grants: {grants}\n",
        sha256_file(PROBE_WASM)
    );
    Pipeline::parse(&yaml, Path::new("probe-pipeline.yaml")).expect("pipeline")
}

fn health_grant(url: &str, tls: &str) -> String {
    format!("{{files: {{read: [/etc/kubernetes]}}, health: [{{url: \"{url}\"{tls}}}]}}")
}

fn run(pipeline: &Pipeline, root: &Path) -> Outcome {
    let mut run = Run::new(pipeline, root);
    run.no_cluster = true;
    run.go()
}

#[test]
fn a_url_off_the_grant_is_denied_without_connecting() {
    let root = node("healthy");
    let server = serve(Reply::Status(200, "ok".into()), None);
    // Same host and port, another path: still not granted.
    let p = probe(
        &server.url("http", "/healthz"),
        2000,
        &health_grant(&server.url("http", "/livez"), ""),
    );
    let err = run(&p, root.path()).error();
    assert!(
        err.contains(&format!("may not GET {}", server.url("http", "/healthz"))),
        "{err}"
    );
    assert!(
        err.contains(&server.url("http", "/livez")),
        "names what is granted: {err}"
    );
    assert!(err.contains("grants.health"), "{err}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.hits(), 0, "no connection may be made for a denied URL");
}

#[test]
fn a_granted_url_returns_the_servers_status_and_body() {
    let root = node("healthy");
    let server = serve(Reply::Status(503, "[-]etcd failed".into()), None);
    let url = server.url("http", "/livez");
    let out = run(&probe(&url, 2000, &health_grant(&url, "")), root.path());
    assert_eq!(
        out.output("probe.status").as_deref(),
        Some("503"),
        "{:?}",
        out.result.as_ref().err()
    );
    assert_eq!(out.output("probe.body").as_deref(), Some("[-]etcd failed"));
    assert_eq!(out.output("probe.origin").as_deref(), Some("Origin::Network"));
    assert_eq!(
        server.requests.lock().expect("requests").as_slice(),
        ["GET /livez HTTP/1.1"]
    );
}

#[test]
fn a_large_body_is_capped() {
    let root = node("healthy");
    let server = serve(Reply::Status(200, "x".repeat(100_000)), None);
    let url = server.url("http", "/healthz");
    let out = run(&probe(&url, 2000, &health_grant(&url, "")), root.path());
    assert_eq!(out.output("probe.truncated").as_deref(), Some("true"));
    assert_eq!(out.output("probe.body").map(|b| b.len()), Some(64 << 10));
}

#[test]
fn a_silent_server_times_out() {
    let root = node("healthy");
    let server = serve(Reply::Silent, None);
    let url = server.url("http", "/healthz");
    let start = Instant::now();
    let err = run(&probe(&url, 300, &health_grant(&url, "")), root.path()).error();
    assert!(err.contains("TimedOut") && err.contains("within 300ms"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(server.hits(), 1);
}

#[test]
fn nothing_listening_is_refused() {
    let root = node("healthy");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("http://127.0.0.1:{port}/healthz");
    run(&probe(&url, 2000, &health_grant(&url, "")), root.path())
        .expect_error(&["Refused", "connection refused"]);
}

#[test]
fn https_verify_accepts_the_granted_ca_and_refuses_another() {
    let root = node("healthy");
    let pki = TestPki::new("kubernetes");
    let other = TestPki::new("someone-else");
    std::fs::create_dir_all(root.path().join("etc/kubernetes/pki")).expect("mkdir");
    std::fs::write(root.path().join("etc/kubernetes/pki/ca.crt"), &pki.ca_pem).expect("ca");
    std::fs::write(root.path().join("etc/kubernetes/pki/other.crt"), &other.ca_pem).expect("ca");
    let server = serve(Reply::Status(200, "ok".into()), Some(pki.server_config()));
    let url = server.url("https", "/livez");

    let good = run(
        &probe(
            &url,
            5000,
            &health_grant(&url, ", tls: verify, ca: /etc/kubernetes/pki/ca.crt"),
        ),
        root.path(),
    );
    assert_eq!(
        good.output("probe.status").as_deref(),
        Some("200"),
        "{:?}",
        good.result.as_ref().err()
    );
    assert_eq!(good.output("probe.body").as_deref(), Some("ok"));

    let err = run(
        &probe(
            &url,
            5000,
            &health_grant(&url, ", tls: verify, ca: /etc/kubernetes/pki/other.crt"),
        ),
        root.path(),
    )
    .error();
    assert!(err.contains("Tls") && err.contains("UnknownIssuer"), "{err}");
}

#[test]
fn https_insecure_accepts_a_certificate_no_ca_signed() {
    let root = node("healthy");
    let pki = TestPki::new("self-signed-component");
    let server = serve(Reply::Status(200, "ok".into()), Some(pki.server_config()));
    let url = server.url("https", "/healthz");
    let out = run(
        &probe(&url, 5000, &health_grant(&url, ", tls: insecure")),
        root.path(),
    );
    assert_eq!(
        out.output("probe.status").as_deref(),
        Some("200"),
        "{:?}",
        out.result.as_ref().err()
    );
}

#[test]
fn dry_run_records_the_check_and_sends_nothing() {
    let root = node("healthy");
    let server = serve(Reply::Status(200, "ok".into()), None);
    let url = server.url("http", "/healthz");
    let p = probe(&url, 2000, &health_grant(&url, ""));
    let mut run = Run::new(&p, root.path());
    run.dry_run = true;
    run.no_cluster = true;
    let out = run.go();
    assert_eq!(out.output("probe.origin").as_deref(), Some("Origin::Recorded"));
    assert_eq!(out.output("probe.status").as_deref(), Some("0"));
    assert!(
        out.stdout
            .contains(&format!("[dryrun] Would make sure {url} returns 'ok'")),
        "{:?}",
        out.stdout
    );
    assert_eq!(server.hits(), 0);
}

#[test]
fn the_in_memory_cluster_answers_for_its_simulated_node() {
    let root = node("healthy");
    let server = serve(Reply::Status(500, "down".into()), None);
    let url = server.url("http", "/healthz");
    let p = probe(&url, 2000, &health_grant(&url, ""));
    let mut run = Run::new(&p, root.path());
    run.cluster = Some(Arc::new(MemoryCluster::new()));
    let out = run.go();
    assert_eq!(out.output("probe.origin").as_deref(), Some("Origin::Simulated"));
    assert_eq!(out.output("probe.status").as_deref(), Some("200"));
    assert_eq!(server.hits(), 0, "the simulated node answers; nothing is sent");
    // Still only granted URLs.
    let p = probe(&server.url("http", "/other"), 2000, &health_grant(&url, ""));
    let mut run = Run::new(&p, root.path());
    run.cluster = Some(Arc::new(MemoryCluster::new()));
    assert!(run.go().error().contains("may not GET"));
}

#[test]
fn health_grants_are_checked_when_the_pipeline_is_read() {
    let parse = |grants: &str| {
        let yaml = format!(
            "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: probe\n    component: builtin:preflight\n    grants:\n{grants}"
        );
        Pipeline::parse(&yaml, Path::new("p.yaml"))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let cases = [
        (
            "      health: [{url: \"https://127.0.0.1:10257/healthz\"}]\n",
            "needs `tls: verify` (with `ca: <file>`) or `tls: insecure`",
        ),
        (
            "      health: [{url: \"https://127.0.0.1:10257/healthz\", tls: verify}]\n",
            "`tls: verify` needs `ca:",
        ),
        (
            "      health: [{url: \"http://127.0.0.1:10248/healthz\", tls: insecure}]\n",
            "for https URLs only",
        ),
        (
            "      health: [{url: \"http://127.0.0.1/healthz\"}]\n",
            "needs an explicit port",
        ),
        (
            "      health: [{url: \"http://*:10248/healthz\"}]\n",
            "no wildcards",
        ),
        (
            "      health: [{url: \"https://{nodeIP}:6443/livez\", tls: insecure}]\n",
            "the only variables are",
        ),
        (
            "      health: [{url: \"https://127.0.0.1:6443/livez\", tls: verify, ca: /etc/kubernetes/pki/ca.crt}]\n",
            "which the phase may not read",
        ),
    ];
    for (grants, want) in cases {
        let err = parse(grants).expect_err(grants);
        assert!(err.contains(want), "{grants}: {err}");
        assert!(err.starts_with("p.yaml:"), "names the file and line: {err}");
    }
    parse(
        "      files: {read: [/etc/kubernetes/pki]}\n      health:\n        - {url: \"https://{advertiseAddress}:{bindPort}/livez\", tls: verify, ca: /etc/kubernetes/pki/ca.crt}\n",
    )
    .expect("a valid grant");
}

/// The versioning promise of `wit/world.wit`: a plugin built against `0.1.0` (before `health`)
/// links and runs on this `0.1.1` host.
#[test]
fn a_plugin_built_against_0_1_0_runs_on_this_host() {
    let wasm = std::fs::read(wasmadm_tests::LEGACY_PROBE_WASM).expect("legacy probe");
    let imports = |version: &str| {
        let needle = format!("wasmadm:plugin/files@{version}");
        wasm.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    assert!(
        imports("0.1.0") && !imports("0.1.1"),
        "the probe must really be a 0.1.0 component"
    );
    let root = node("healthy");
    let yaml = format!(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: legacy\n    component: {}\n    \
         digest: sha256:{}\n    grants: {{files: {{read: [/etc/hosts]}}}}\n",
        wasmadm_tests::LEGACY_PROBE_WASM,
        sha256_file(wasmadm_tests::LEGACY_PROBE_WASM)
    );
    let pipeline = Pipeline::parse(&yaml, Path::new("legacy.yaml")).expect("pipeline");
    let out = run(&pipeline, root.path());
    assert!(out.result.is_ok(), "{}", out.error());
    assert_eq!(out.stdout, ["[legacy-probe] running on a newer 0.1.x host"]);
    let size = std::fs::metadata(root.path().join("etc/hosts"))
        .expect("hosts")
        .len();
    assert_eq!(out.output("legacy.hosts-bytes"), Some(size.to_string()));
}

#[test]
fn a_silent_https_server_times_out_in_the_tls_handshake() {
    let root = node("healthy");
    // Accepted by the kernel, never answered: the handshake itself must end at the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let url = format!("https://{}/livez", silent.local_addr().expect("address"));
    let err = run(
        &probe(&url, 300, &health_grant(&url, ", tls: insecure")),
        root.path(),
    )
    .error();
    assert!(err.contains("TimedOut") && err.contains("within 300ms"), "{err}");
}
