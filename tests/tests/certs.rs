//! The built-in `certs` plugin against fresh fixture roots, checked with the real `openssl` CLI:
//! kubeadm's 10 certificates and the SA key pair, their subjects, SANs, usages, validity, file
//! modes and console lines; reuse on a second run; errors that name the broken file; single
//! sub-phases; external CA and external etcd.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use wasmadm_tests::{
    Outcome, Run, assert_leaf_extensions, fixture, node, openssl, verify_cert_and_key, write_config,
    x509_fields,
};

/// (file base name, CA base name, subject, SANs or "", extended key usage or "").
const CERTS: &[(&str, &str, &str, &str, &str)] = &[
    ("ca", "ca", "CN=kubernetes", "DNS:kubernetes", ""),
    (
        "apiserver",
        "ca",
        "CN=kube-apiserver",
        "DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, DNS:n1, IP Address:10.96.0.1, IP Address:10.200.0.2",
        "TLS Web Server Authentication",
    ),
    (
        "apiserver-kubelet-client",
        "ca",
        "CN=kube-apiserver-kubelet-client",
        "",
        "TLS Web Client Authentication",
    ),
    (
        "front-proxy-ca",
        "front-proxy-ca",
        "CN=front-proxy-ca",
        "DNS:front-proxy-ca",
        "",
    ),
    (
        "front-proxy-client",
        "front-proxy-ca",
        "CN=front-proxy-client",
        "",
        "TLS Web Client Authentication",
    ),
    ("etcd/ca", "etcd/ca", "CN=etcd-ca", "DNS:etcd-ca", ""),
    (
        "etcd/server",
        "etcd/ca",
        "CN=n1",
        "DNS:localhost, DNS:n1, IP Address:10.200.0.2, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
        "TLS Web Server Authentication, TLS Web Client Authentication",
    ),
    (
        "etcd/peer",
        "etcd/ca",
        "CN=n1",
        "DNS:localhost, DNS:n1, IP Address:10.200.0.2, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
        "TLS Web Server Authentication, TLS Web Client Authentication",
    ),
    (
        "etcd/healthcheck-client",
        "etcd/ca",
        "CN=kube-etcd-healthcheck-client",
        "",
        "TLS Web Client Authentication",
    ),
    (
        "apiserver-etcd-client",
        "etcd/ca",
        "CN=kube-apiserver-etcd-client",
        "",
        "TLS Web Client Authentication",
    ),
];

/// What real kubeadm v1.36 printed for the reference configuration (`init-output.txt`).
const KUBEADM_LINES: &[&str] = &[
    "[certs] Using certificateDir folder \"/etc/kubernetes/pki\"",
    "[certs] Generating \"ca\" certificate and key",
    "[certs] Generating \"apiserver\" certificate and key",
    "[certs] apiserver serving cert is signed for DNS names [kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local n1] and IPs [10.96.0.1 10.200.0.2]",
    "[certs] Generating \"apiserver-kubelet-client\" certificate and key",
    "[certs] Generating \"front-proxy-ca\" certificate and key",
    "[certs] Generating \"front-proxy-client\" certificate and key",
    "[certs] Generating \"etcd/ca\" certificate and key",
    "[certs] Generating \"etcd/server\" certificate and key",
    "[certs] etcd/server serving cert is signed for DNS names [localhost n1] and IPs [10.200.0.2 127.0.0.1 ::1]",
    "[certs] Generating \"etcd/peer\" certificate and key",
    "[certs] etcd/peer serving cert is signed for DNS names [localhost n1] and IPs [10.200.0.2 127.0.0.1 ::1]",
    "[certs] Generating \"etcd/healthcheck-client\" certificate and key",
    "[certs] Generating \"apiserver-etcd-client\" certificate and key",
    "[certs] Generating \"sa\" key and public key",
];

fn certs_run(root: &Path, config: &Path, only: Option<&str>) -> Outcome {
    // Only certs: later phases (kubeconfig) have tests of their own.
    let pipeline = wasmadm_tests::default_pipeline_of(&["certs"]);
    let mut run = Run::new(&pipeline, root);
    run.config = Some(config);
    if let Some(sub) = only {
        run.only = Some(("certs".into(), Some(sub.into())));
    }
    run.go()
}

fn pki(root: &Path) -> PathBuf {
    root.join("etc/kubernetes/pki")
}

/// Every file under the pki dir with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for sub in ["", "etcd"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_file() {
                let name = if sub.is_empty() {
                    e.file_name().to_string_lossy().into_owned()
                } else {
                    format!("{sub}/{}", e.file_name().to_string_lossy())
                };
                files.insert(name, std::fs::read(e.path()).expect("read"));
            }
        }
    }
    files
}

/// Checks every certificate and key with openssl, for the given key type.
fn verify_pki(dir: &Path, ecdsa: bool) {
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    for (base, ca, subject, sans, eku) in CERTS {
        let crt = p(&format!("{base}.crt"));
        let key = p(&format!("{base}.key"));
        let ca_crt = p(&format!("{ca}.crt"));
        // The key is the certificate's, in kubeadm's PEM format.
        let full = verify_cert_and_key(&ca_crt, &crt, &key, ecdsa);

        let text = x509_fields(
            &crt,
            &[
                "-subject",
                "-issuer",
                "-ext",
                "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints",
                "-dates",
            ],
        );
        assert!(text.contains(&format!("subject={subject}\n")), "{base}: {text}");
        let issuer_cn = CERTS.iter().find(|c| c.0 == *ca).map(|c| c.2).unwrap_or_default();
        assert!(text.contains(&format!("issuer={issuer_cn}\n")), "{base}: {text}");
        if sans.is_empty() {
            assert!(!text.contains("Subject Alternative Name"), "{base}: {text}");
        } else {
            assert!(
                text.contains(&format!("X509v3 Subject Alternative Name: \n    {sans}\n")),
                "{base}: {text}"
            );
        }
        if base == ca {
            assert!(
                text.contains(
                    "X509v3 Key Usage: critical\n    Digital Signature, Key Encipherment, Certificate Sign\n"
                ),
                "{base}: {text}"
            );
            assert!(
                text.contains("X509v3 Basic Constraints: critical\n    CA:TRUE\n"),
                "{base}: {text}"
            );
            assert!(!text.contains("Extended Key Usage"), "{base}: {text}");
        } else {
            assert_leaf_extensions(&text, eku, base);
        }
        // Validity: CA 10 years (87600h), leaves 1 year (8760h), both back-dated 5 minutes.
        let date = |field: &str| {
            let line = text.lines().find(|l| l.starts_with(field)).expect("date line");
            let when = line.trim_start_matches(field);
            let epoch = Process::new("date")
                .args(["-u", "-d", when, "+%s"])
                .output()
                .expect("date");
            String::from_utf8_lossy(&epoch.stdout)
                .trim()
                .parse::<i64>()
                .expect("epoch")
        };
        let (nb, na) = (date("notBefore="), date("notAfter="));
        let hours = if base == ca { 87600 } else { 8760 };
        assert_eq!(na - nb, hours * 3600 + 300, "{base}: {text}");

        // Key identifiers: leaves name their CA's SKI; CAs carry one, leaves do not.
        let ids = openssl(&[
            "x509",
            "-in",
            &crt,
            "-noout",
            "-ext",
            "subjectKeyIdentifier,authorityKeyIdentifier",
        ]);
        let ca_ids = openssl(&["x509", "-in", &ca_crt, "-noout", "-ext", "subjectKeyIdentifier"]);
        let ski = ca_ids.lines().nth(1).expect("CA SKI").trim().to_string();
        if base == ca {
            assert!(!ids.contains("Authority Key Identifier"), "{base}: {ids}");
        } else {
            assert!(!ids.contains("Subject Key Identifier"), "{base}: {ids}");
            assert!(ids.contains(&ski), "{base}: AKI must be {ski}: {ids}");
        }

        if ecdsa {
            assert!(full.contains("Signature Algorithm: ecdsa-with-SHA256"), "{base}");
        } else {
            // openssl's own consistency check: p and q prime, n = pq, d and the CRT values right.
            assert_eq!(
                openssl(&["rsa", "-check", "-noout", "-in", &key]).trim(),
                "RSA key ok",
                "{base}"
            );
            assert!(
                full.contains("Signature Algorithm: sha256WithRSAEncryption"),
                "{base}"
            );
        }
    }

    // sa.key and sa.pub are one pair.
    let sa_pub = std::fs::read_to_string(dir.join("sa.pub")).expect("sa.pub");
    assert!(sa_pub.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(openssl(&["pkey", "-in", &p("sa.key"), "-pubout"]), sa_pub);

    // File modes as kubeadm leaves them (reference `_modes.txt`).
    for (name, _) in snapshot(dir) {
        let mode = std::fs::metadata(dir.join(&name))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        let want = if name.ends_with(".crt") { 0o644 } else { 0o600 };
        assert_eq!(mode, want, "{name}: {mode:o}");
    }
    let etcd_mode = std::fs::metadata(dir.join("etcd"))
        .expect("etcd dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(etcd_mode, 0o755);
    assert_eq!(snapshot(dir).len(), 22, "{:?}", snapshot(dir).keys());
}

#[test]
fn rsa_2048_pki_matches_kubeadms() {
    let root = node("healthy");
    let started = std::time::Instant::now();
    let out = certs_run(root.path(), &fixture("init-config.yaml"), None);
    eprintln!("certs phase (RSA-2048, 11 keys) took {:?}", started.elapsed());
    out.expect_ok();
    assert_eq!(out.stdout, KUBEADM_LINES);
    verify_pki(&pki(root.path()), false);
    // The CA pin for join is published for later phases.
    let pin = out.output("certs.ca-cert-hash").expect("ca-cert-hash output");
    let spki = openssl(&[
        "x509",
        "-in",
        &pki(root.path()).join("ca.crt").to_string_lossy(),
        "-noout",
        "-pubkey",
    ]);
    let der = Process::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(spki.as_bytes())?;
            c.wait_with_output()
        })
        .expect("openssl pkey");
    let hash = Process::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(&der.stdout)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    let hex = String::from_utf8_lossy(&hash.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(pin, format!("sha256:{hex}"));
}

#[test]
fn ecdsa_p256_pki_verifies() {
    let root = node("healthy");
    let config = write_config(root.path(), "encryptionAlgorithm: ECDSA-P256\n");
    let out = certs_run(root.path(), &config, None);
    out.expect_ok();
    assert_eq!(out.stdout, KUBEADM_LINES);
    verify_pki(&pki(root.path()), true);
}

#[test]
fn second_run_reuses_everything_byte_for_byte() {
    let root = node("healthy");
    let config = write_config(root.path(), "encryptionAlgorithm: ECDSA-P256\n");
    certs_run(root.path(), &config, None).expect_ok();
    let before = snapshot(&pki(root.path()));
    let out = certs_run(root.path(), &config, None);
    out.expect_ok();
    assert_eq!(snapshot(&pki(root.path())), before);
    assert_eq!(
        out.stdout,
        [
            "[certs] Using certificateDir folder \"/etc/kubernetes/pki\"",
            "[certs] Using existing ca certificate authority",
            "[certs] Using existing apiserver certificate and key on disk",
            "[certs] Using existing apiserver-kubelet-client certificate and key on disk",
            "[certs] Using existing front-proxy-ca certificate authority",
            "[certs] Using existing front-proxy-client certificate and key on disk",
            "[certs] Using existing etcd/ca certificate authority",
            "[certs] Using existing etcd/server certificate and key on disk",
            "[certs] Using existing etcd/peer certificate and key on disk",
            "[certs] Using existing etcd/healthcheck-client certificate and key on disk",
            "[certs] Using existing apiserver-etcd-client certificate and key on disk",
            "[certs] Using the existing \"sa\" key",
        ]
    );
}

#[test]
fn broken_or_foreign_files_are_errors_naming_the_file() {
    let root = node("healthy");
    let config = write_config(root.path(), "encryptionAlgorithm: ECDSA-P256\n");
    certs_run(root.path(), &config, None).expect_ok();
    let dir = pki(root.path());

    // Garbage in a certificate.
    let good = std::fs::read(dir.join("apiserver.crt")).expect("read");
    let good_key = std::fs::read(dir.join("apiserver.key")).expect("read");
    std::fs::write(dir.join("apiserver.crt"), b"\x00garbage\xff").expect("write");
    let out = certs_run(root.path(), &config, None);
    let err = out.error();
    assert!(err.contains("/etc/kubernetes/pki/apiserver.crt"), "{err}");
    assert!(err.contains("failure loading apiserver certificate"), "{err}");
    assert_eq!(
        std::fs::read(dir.join("apiserver.crt")).expect("read"),
        b"\x00garbage\xff",
        "left as it was"
    );
    std::fs::write(dir.join("apiserver.crt"), &good).expect("restore");

    // A key that is not the certificate's.
    let other = std::fs::read(dir.join("front-proxy-client.key")).expect("read");
    std::fs::write(dir.join("apiserver.key"), &other).expect("write");
    certs_run(root.path(), &config, None)
        .expect_error(&["/etc/kubernetes/pki/apiserver.key", "does not match"]);

    // A leaf signed by another CA.
    std::fs::write(
        dir.join("apiserver.key"),
        std::fs::read(dir.join("front-proxy-client.key")).expect("read"),
    )
    .expect("write");
    std::fs::write(
        dir.join("apiserver.crt"),
        std::fs::read(dir.join("front-proxy-client.crt")).expect("read"),
    )
    .expect("write");
    certs_run(root.path(), &config, None).expect_error(&["not signed by CA certificate ca", "apiserver.crt"]);
    std::fs::write(dir.join("apiserver.crt"), &good).expect("restore");
    std::fs::write(dir.join("apiserver.key"), &good_key).expect("restore");
    certs_run(root.path(), &config, None).expect_ok();

    // A corrupt CA key.
    std::fs::write(dir.join("etcd/ca.key"), b"nope").expect("write");
    let err = certs_run(root.path(), &config, None).error();
    assert!(err.contains("/etc/kubernetes/pki/etcd/ca.key"), "{err}");
}

#[test]
fn san_that_no_longer_covers_the_config_is_an_error() {
    let root = node("healthy");
    let config = write_config(root.path(), "encryptionAlgorithm: ECDSA-P256\n");
    certs_run(root.path(), &config, None).expect_ok();
    let wider = write_config(
        root.path(),
        "encryptionAlgorithm: ECDSA-P256\napiServer: {certSANs: [lb.example.com, 192.0.2.7]}\n",
    );
    certs_run(root.path(), &wider, None).expect_error(&["certificate apiserver is invalid", "192.0.2.7"]);
}

#[test]
fn phase_certs_apiserver_writes_only_the_apiserver_pair() {
    let root = node("healthy");
    let config = write_config(root.path(), "encryptionAlgorithm: ECDSA-P256\n");
    certs_run(root.path(), &config, None).expect_ok();
    let dir = pki(root.path());
    std::fs::remove_file(dir.join("apiserver.crt")).expect("rm");
    std::fs::remove_file(dir.join("apiserver.key")).expect("rm");
    let before = snapshot(&dir);

    let out = certs_run(root.path(), &config, Some("apiserver"));
    out.expect_ok();
    assert_eq!(
        out.stdout,
        [
            "[certs] Generating \"apiserver\" certificate and key",
            "[certs] apiserver serving cert is signed for DNS names [kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local n1] and IPs [10.96.0.1 10.200.0.2]",
        ]
    );
    let mut after = snapshot(&dir);
    assert!(after.remove("apiserver.crt").is_some() && after.remove("apiserver.key").is_some());
    assert_eq!(after, before, "nothing but the apiserver pair changed");
    let crt = dir.join("apiserver.crt").to_string_lossy().into_owned();
    let ca = dir.join("ca.crt").to_string_lossy().into_owned();
    openssl(&["verify", "-x509_strict", "-CAfile", &ca, &crt]);

    // Alone on an empty node it needs the CA, and says which file is missing.
    let empty = node("healthy");
    let err = certs_run(empty.path(), &config, Some("apiserver")).error();
    assert!(err.contains("/etc/kubernetes/pki/ca.crt"), "{err}");
    assert!(!pki(empty.path()).join("apiserver.crt").exists());
}

#[test]
fn external_ca_uses_existing_leaves_and_refuses_to_invent_them() {
    let root = node("healthy");
    let config = write_config(root.path(), "encryptionAlgorithm: ECDSA-P256\n");
    certs_run(root.path(), &config, None).expect_ok();
    let dir = pki(root.path());
    std::fs::remove_file(dir.join("ca.key")).expect("rm");
    let before = snapshot(&dir);
    let out = certs_run(root.path(), &config, None);
    out.expect_ok();
    assert_eq!(
        out.stdout[1],
        "[certs] Using existing ca keyless certificate authority"
    );
    assert!(
        out.stdout.contains(&"[certs] Using existing sa keys".to_string()),
        "{:?}",
        out.stdout
    );
    assert_eq!(snapshot(&dir), before);

    std::fs::remove_file(dir.join("apiserver-kubelet-client.crt")).expect("rm");
    std::fs::remove_file(dir.join("apiserver-kubelet-client.key")).expect("rm");
    certs_run(root.path(), &config, None).expect_error(&["external", "apiserver-kubelet-client.crt"]);
}

#[test]
fn external_etcd_skips_the_etcd_certificates() {
    let root = node("healthy");
    let config = write_config(
        root.path(),
        "encryptionAlgorithm: ECDSA-P256\netcd:\n  external:\n    endpoints: [https://10.0.0.1:2379]\n    caFile: /etc/etcd/ca.crt\n    certFile: /etc/etcd/c.crt\n    keyFile: /etc/etcd/c.key\n",
    );
    let out = certs_run(root.path(), &config, None);
    out.expect_ok();
    assert!(
        out.stdout.contains(
            &"[certs] External etcd mode: Skipping etcd/ca certificate authority generation".to_string()
        ),
        "{:?}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&"[certs] External etcd mode: Skipping etcd/server certificate generation".to_string())
    );
    assert!(!pki(root.path()).join("etcd").exists());
    assert!(!pki(root.path()).join("apiserver-etcd-client.crt").exists());
}
