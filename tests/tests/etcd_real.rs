//! The generated PKI and etcd manifest against a real etcd (Debian's `etcd-server`, installed by
//! `.ci/run`): etcd is started with the command line of the generated `etcd.yaml`, and `etcdctl`
//! proves that the TLS endpoint works with kubeadm's client certificates and refuses others.
//!
//! The manifest's command line is run as written except for the rewrites a test host needs (see
//! `wasmadm_tests::static_pod`): hostPaths mapped into the node root, the advertise address and
//! ports mapped to 127.0.0.1 and free ports, and — because Debian ships etcd 3.4 while kubeadm
//! v1.36 targets 3.6 — the two flags that 3.6 renamed are given their 3.4 names.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use wasmadm_tests::static_pod::{Process, StaticPod, etcd_rewrites};
use wasmadm_tests::{fixture, node, openssl, run_phases};

const ADVERTISE: &str = "10.200.0.2";

/// `etcd` from PATH; a missing binary fails the test with the fix.
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not installed: these tests need a real etcd. Install Debian's \
                 packages: `apt-get install etcd-server etcd-client` (.ci/run does)"
            )
        })
}

/// A node root with the PKI and the etcd manifest of the reference configuration.
fn generated_node() -> tempfile::TempDir {
    let root = node("healthy");
    run_phases(root.path(), &fixture("init-config.yaml"), &["certs", "etcd"]);
    root
}

struct Etcd {
    process: Process,
    client_url: String,
    pki: PathBuf,
    _root: tempfile::TempDir,
}

/// Starts etcd from the generated manifest and waits until the healthcheck client sees it healthy.
fn start_etcd() -> Etcd {
    let etcd = which("etcd");
    which("etcdctl");
    let root = generated_node();
    let pod = StaticPod::load(root.path(), "etcd");
    let (rewrites, ports) = etcd_rewrites(&etcd, ADVERTISE);
    let args = pod.command_line(root.path(), &rewrites);
    let data_dir = format!("--data-dir={}", root.path().join("var/lib/etcd").display());
    assert!(
        args.contains(&data_dir),
        "the data dir is mapped into the root: {args:?}"
    );
    let process = pod.start(&etcd, &args, root.path());
    let pki = root.path().join("etc/kubernetes/pki");
    let mut etcd = Etcd {
        process,
        client_url: format!("https://127.0.0.1:{}", ports.client),
        pki,
        _root: root,
    };
    let (url, pki) = (etcd.client_url.clone(), etcd.pki.clone());
    etcd.process.wait_until(Duration::from_secs(30), || {
        etcdctl(
            &url,
            &pki.join("etcd/ca.crt"),
            &healthcheck_client(&pki),
            &["endpoint", "health"],
        )
        .status
        .success()
    });
    etcd
}

fn healthcheck_client(pki: &Path) -> (PathBuf, PathBuf) {
    (
        pki.join("etcd/healthcheck-client.crt"),
        pki.join("etcd/healthcheck-client.key"),
    )
}

fn etcdctl(url: &str, ca: &Path, (cert, key): &(PathBuf, PathBuf), args: &[&str]) -> Output {
    std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={url}"))
        .arg(format!("--cacert={}", ca.display()))
        .arg(format!("--cert={}", cert.display()))
        .arg(format!("--key={}", key.display()))
        .args(["--dial-timeout=3s", "--command-timeout=5s"])
        .args(args)
        .output()
        .expect("run etcdctl")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A CA and a client certificate from it, made with the openssl CLI (not wasmadm's code).
fn foreign_client(dir: &Path, cn: &str) -> (PathBuf, (PathBuf, PathBuf)) {
    let p = |n: &str| dir.join(n).display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", &p("other-ca.key"), "-out", &p("other-ca.crt")],
        ]
        .concat()
        .into_iter()
        .chain(["-subj", "/CN=etcd-ca", "-days", "1"])
        .collect::<Vec<_>>(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", &p("client.key"), "-out", &p("client.csr")],
        ]
        .concat()
        .into_iter()
        .chain(["-subj", &format!("/CN={cn}")])
        .collect::<Vec<_>>(),
    );
    std::fs::write(dir.join("ext.cnf"), "extendedKeyUsage=clientAuth\n").expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("client.csr"),
        "-CA",
        &p("other-ca.crt"),
        "-CAkey",
        &p("other-ca.key"),
        "-CAcreateserial",
        "-out",
        &p("client.crt"),
        "-days",
        "1",
        "-extfile",
        &p("ext.cnf"),
    ]);
    (
        dir.join("other-ca.crt"),
        (dir.join("client.crt"), dir.join("client.key")),
    )
}

#[test]
fn etcd_started_from_the_generated_manifest_serves_kubeadm_clients() {
    let mut etcd = start_etcd();
    let ca = etcd.pki.join("etcd/ca.crt");
    let health = etcdctl(
        &etcd.client_url,
        &ca,
        &healthcheck_client(&etcd.pki),
        &["endpoint", "health"],
    );
    assert!(text(&health).contains("is healthy"), "{}", text(&health));

    // The API server's identity can write and read.
    let apiserver = (
        etcd.pki.join("apiserver-etcd-client.crt"),
        etcd.pki.join("apiserver-etcd-client.key"),
    );
    let put = etcdctl(
        &etcd.client_url,
        &ca,
        &apiserver,
        &["put", "/registry/wasmadm", "ok"],
    );
    assert!(put.status.success(), "put: {}", text(&put));
    let get = etcdctl(
        &etcd.client_url,
        &ca,
        &apiserver,
        &["get", "/registry/wasmadm", "--print-value-only"],
    );
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim(),
        "ok",
        "{}",
        text(&get)
    );

    // etcd wrote its data where the manifest's hostPath says.
    assert!(etcd._root.path().join("var/lib/etcd/member").is_dir());
    etcd.process.assert_running();
}

#[test]
fn etcd_refuses_a_client_certificate_from_another_ca() {
    let mut etcd = start_etcd();
    let dir = tempfile::tempdir().expect("tempdir");
    let (other_ca, other_client) = foreign_client(dir.path(), "kube-etcd-healthcheck-client");

    // Same subject, wrong issuer: the server must reject the handshake.
    let ca = etcd.pki.join("etcd/ca.crt");
    let refused = etcdctl(&etcd.client_url, &ca, &other_client, &["endpoint", "health"]);
    assert!(
        !refused.status.success(),
        "a foreign client cert was accepted: {}",
        text(&refused)
    );
    let log = etcd.process.log_text();
    assert!(
        log.contains("rejected connection") && log.contains("unknown authority"),
        "etcd's log does not show the rejected handshake:\n{log}"
    );

    // And a client trusting only another CA does not accept the etcd server's certificate.
    let untrusted = etcdctl(
        &etcd.client_url,
        &other_ca,
        &healthcheck_client(&etcd.pki),
        &["endpoint", "health"],
    );
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    assert!(
        etcd.process
            .log_text()
            .contains("remote error: tls: bad certificate"),
        "etcd's log does not show the client aborting the handshake:\n{}",
        etcd.process.log_text()
    );

    // The server itself still serves its own clients.
    let health = etcdctl(
        &etcd.client_url,
        &ca,
        &healthcheck_client(&etcd.pki),
        &["endpoint", "health"],
    );
    assert!(health.status.success(), "{}", text(&health));
    etcd.process.assert_running();
}
