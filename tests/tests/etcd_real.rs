//! The generated PKI and etcd manifest against a real etcd (Debian's `etcd-server`, installed by
//! `.ci/run`): etcd is started with the command line of the generated `etcd.yaml`, and `etcdctl`
//! proves that the TLS endpoint works with kubeadm's client certificates and refuses others.
//!
//! The manifest's command line is run as written except for the rewrites a test host needs (see
//! `wasmadm_tests::static_pod`): hostPaths mapped into the node root, the advertise address and
//! ports mapped to 127.0.0.1 and free ports, and — because Debian ships etcd 3.4 while kubeadm
//! v1.36 targets 3.6 — the two flags that 3.6 renamed are given their 3.4 names.

use wasmadm_tests::etcd::{etcdctl, foreign_client, healthcheck_client, start as start_etcd, text};

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
    assert!(etcd.root.join("var/lib/etcd/member").is_dir());
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
