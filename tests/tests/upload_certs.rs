//! The built-in `upload-certs` plugin against the in-memory cluster and real PEM files made by
//! the `openssl` CLI: the skip line without `--upload-certs`; Secret `kubeadm-certs` decrypted
//! with `ring`'s AES-256-GCM (not the plugin's code path) back to the files on disk; the owner
//! bootstrap token and the ownerReference to it; the RBAC; the printed and published key; a
//! wrong key refused by the download-side helper with a clear message; idempotency; external CA.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use wasmadm::cluster::Cluster;
use wasmadm::cluster::memory::MemoryCluster;
use wasmadm::config::kubeadm::{self, Flags, InitFlags};
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::{Outcome, Run, fixture, openssl};

/// The Secret's keys and the files they hold, as kubeadm names them (local etcd).
const ENTRIES: &[(&str, &str)] = &[
    ("ca.crt", "ca.crt"),
    ("ca.key", "ca.key"),
    ("etcd-ca.crt", "etcd/ca.crt"),
    ("etcd-ca.key", "etcd/ca.key"),
    ("front-proxy-ca.crt", "front-proxy-ca.crt"),
    ("front-proxy-ca.key", "front-proxy-ca.key"),
    ("sa.key", "sa.key"),
    ("sa.pub", "sa.pub"),
];

const KEY: &str = "f614088d3cd78dd15906b5ddc1b24a074bc12ba206f35b8cb9be601718f005c3";

/// A node root with the CA and service-account files `kubeadm init phase certs` makes.
fn node_with_pki() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tmp");
    let pki = root.path().join("etc/kubernetes/pki");
    std::fs::create_dir_all(pki.join("etcd")).expect("mkdir");
    let p = |f: &str| pki.join(f).to_string_lossy().into_owned();
    for ca in ["ca", "front-proxy-ca", "etcd/ca"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={}", ca.replace('/', "-")),
            "-keyout",
            &p(&format!("{ca}.key")),
            "-out",
            &p(&format!("{ca}.crt")),
        ]);
    }
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &p("sa.key"),
    ]);
    openssl(&["pkey", "-in", &p("sa.key"), "-pubout", "-out", &p("sa.pub")]);
    root
}

fn run(root: &Path, cluster: &Arc<MemoryCluster>, mut init: InitFlags) -> Outcome {
    let pipeline = Pipeline::builtin_default().expect("default pipeline");
    let mut run = Run::new(&pipeline, root);
    // As in kubeadm, `--certificate-key` does not mix with `--config`: the key goes in the file.
    let mut text = std::fs::read_to_string(fixture("init-config.yaml")).expect("fixture");
    if let Some(key) = init.certificate_key.take() {
        text = text.replacen(
            "kind: InitConfiguration\n",
            &format!("kind: InitConfiguration\ncertificateKey: {key:?}\n"),
            1,
        );
    }
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("init-config.yaml");
    std::fs::write(&config, text).expect("config");
    run.config = Some(&config);
    run.flags = Flags {
        init,
        ..Flags::default()
    };
    run.only = Some(("upload-certs".into(), None));
    run.cluster = Some(cluster.clone() as Arc<dyn Cluster>);
    run.go()
}

fn upload(key: Option<&str>) -> InitFlags {
    InitFlags {
        upload_certs: true,
        certificate_key: key.map(str::to_string),
        ..InitFlags::default()
    }
}

fn secrets(cluster: &MemoryCluster) -> Vec<Value> {
    cluster
        .objects()
        .into_iter()
        .filter(|o| o["kind"] == "Secret")
        .collect()
}

fn kubeadm_certs(cluster: &MemoryCluster) -> Value {
    secrets(cluster)
        .into_iter()
        .find(|s| s["metadata"]["name"] == "kubeadm-certs")
        .expect("Secret kubeadm-certs")
}

/// The Secret's data, base64-decoded.
fn data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    secret["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                B64.decode(v.as_str().expect("string")).expect("base64"),
            )
        })
        .collect()
}

/// AES-256-GCM open with `ring`: `nonce (12) ‖ ciphertext ‖ tag (16)`, no AAD.
fn ring_open(key_hex: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let key = hex::decode(key_hex).ok()?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?);
    let (nonce, rest) = sealed.split_at(12);
    let mut buf = rest.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    key.open_in_place(nonce, Aad::empty(), &mut buf)
        .ok()
        .map(|p| p.to_vec())
}

fn assert_decrypts_to_files(root: &Path, secret: &Value, key: &str) {
    let data = data(secret);
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ENTRIES.iter().map(|(k, _)| *k).collect::<Vec<_>>());
    let mut nonces = Vec::new();
    for (name, file) in ENTRIES {
        let on_disk = std::fs::read(root.join("etc/kubernetes/pki").join(file)).expect("pem file");
        let sealed = &data[*name];
        assert_eq!(
            sealed.len(),
            12 + on_disk.len() + 16,
            "{name}: nonce ‖ ciphertext ‖ tag"
        );
        assert_eq!(
            ring_open(key, sealed).as_deref(),
            Some(on_disk.as_slice()),
            "{name}"
        );
        nonces.push(sealed[..12].to_vec());
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), ENTRIES.len(), "a fresh nonce per entry");
}

#[test]
fn without_the_flag_the_phase_is_skipped_with_kubeadms_line() {
    let root = tempfile::tempdir().expect("tmp");
    let cluster = Arc::new(MemoryCluster::new());
    let out = run(root.path(), &cluster, InitFlags::default());
    out.expect_ok();
    // init-output.txt line 65.
    assert_eq!(
        out.stdout,
        ["[upload-certs] Skipping phase. Please see --upload-certs"]
    );
    assert!(cluster.objects().is_empty());
    assert_eq!(out.output("upload-certs.certificate-key"), None);
}

#[test]
fn certificates_are_encrypted_so_another_aes_gcm_implementation_decrypts_them() {
    let root = node_with_pki();
    let cluster = Arc::new(MemoryCluster::new());
    let out = run(root.path(), &cluster, upload(Some(KEY)));
    out.expect_ok();
    assert_eq!(
        out.stdout,
        [
            "[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace",
            "[upload-certs] Using certificate key:",
            KEY,
        ]
    );
    assert_eq!(out.output("upload-certs.certificate-key").as_deref(), Some(KEY));
    let secret = kubeadm_certs(&cluster);
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["metadata"]["namespace"], "kube-system");
    assert_decrypts_to_files(root.path(), &secret, KEY);

    // The owner: a bootstrap token that authenticates nobody and expires in two hours.
    let owner = &secret["metadata"]["ownerReferences"];
    assert_eq!(owner.as_array().map(Vec::len), Some(1), "{owner}");
    let token = secrets(&cluster)
        .into_iter()
        .find(|s| s["metadata"]["name"] == owner[0]["name"])
        .expect("the owner token Secret");
    assert_eq!(
        owner[0],
        json!({"apiVersion": "v1", "kind": "Secret", "name": token["metadata"]["name"],
               "uid": token["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true})
    );
    assert_eq!(token["type"], "bootstrap.kubernetes.io/token");
    let t = data(&token);
    let text = |k: &str| String::from_utf8(t[k].clone()).expect("utf-8");
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        ["description", "expiration", "token-id", "token-secret"]
    );
    assert_eq!(
        text("description"),
        "Proxy for managing TTL for the kubeadm-certs secret"
    );
    let id = text("token-id");
    let alnum = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    assert!(alnum(&id, 6), "{id}");
    assert!(alnum(&text("token-secret"), 16));
    assert_eq!(token["metadata"]["name"], format!("bootstrap-token-{id}"));
    use kubeadm_bootstrap_token::clock::{format_rfc3339, now};
    let now = now();
    let expires = text("expiration");
    let two_hours = format_rfc3339(now + 7200);
    assert_eq!(expires.len(), two_hours.len(), "{expires}");
    assert!(
        expires.as_str() >= format_rfc3339(now + 7200 - 60).as_str() && expires <= two_hours,
        "{expires} is not two hours from now"
    );

    // Joining control-plane nodes (bootstrap tokens) may read the Secret, and nothing else.
    let objects = cluster.objects();
    let get = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == "kubeadm:kubeadm-certs")
            .unwrap_or_else(|| panic!("{kind} kubeadm:kubeadm-certs"))
    };
    assert_eq!(
        get("Role")["rules"],
        json!([{"apiGroups": [""], "resourceNames": ["kubeadm-certs"], "resources": ["secrets"], "verbs": ["get"]}])
    );
    assert_eq!(
        get("RoleBinding")["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                "name": "system:bootstrappers:kubeadm:default-node-token"}])
    );
    assert_eq!(
        get("RoleBinding")["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kubeadm:kubeadm-certs"})
    );
}

#[test]
fn a_generated_key_is_printed_published_and_decrypts() {
    let root = node_with_pki();
    let cluster = Arc::new(MemoryCluster::new());
    let out = run(root.path(), &cluster, upload(None));
    out.expect_ok();
    let key = out
        .output("upload-certs.certificate-key")
        .expect("certificate-key output");
    assert_eq!(key.len(), 64);
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{key}"
    );
    assert_eq!(
        out.stdout[1..],
        ["[upload-certs] Using certificate key:".to_string(), key.clone()]
    );
    assert_decrypts_to_files(root.path(), &kubeadm_certs(&cluster), &key);

    let quiet = run(
        root.path(),
        &Arc::new(MemoryCluster::new()),
        InitFlags {
            skip_certificate_key_print: true,
            ..upload(None)
        },
    );
    quiet.expect_ok();
    assert_eq!(quiet.stdout.len(), 1, "{:?}", quiet.stdout);
}

#[test]
fn a_wrong_key_is_refused_with_a_clear_message() {
    let root = node_with_pki();
    let cluster = Arc::new(MemoryCluster::new());
    run(root.path(), &cluster, upload(Some(KEY))).expect_ok();
    let data = data(&kubeadm_certs(&cluster));
    let wrong = KEY.replace('f', "e");
    assert_eq!(ring_open(&wrong, &data["ca.key"]), None);

    let right = kubeadm_copycerts::CertificateKey::from_hex(KEY).expect("key");
    let plain = kubeadm_copycerts::decrypt_all(&data, &right).expect("the right key decrypts");
    assert_eq!(
        plain["sa.key"],
        std::fs::read(root.path().join("etc/kubernetes/pki/sa.key")).expect("sa.key")
    );
    let wrong = kubeadm_copycerts::CertificateKey::from_hex(&wrong).expect("key");
    let err = kubeadm_copycerts::decrypt_all(&data, &wrong)
        .expect_err("wrong key")
        .to_string();
    assert!(err.contains("cannot decrypt entry"), "{err}");
    assert!(err.contains("certificate key"), "{err}");
    assert!(err.contains("upload-certs --upload-certs"), "{err}");

    let bad = kubeadm_copycerts::CertificateKey::from_hex("abc")
        .expect_err("short")
        .to_string();
    assert!(bad.contains("64 hexadecimal characters"), "{bad}");
    // Without a file (the flag does not mix with --config, as in kubeadm).
    let config = kubeadm::resolve(
        None,
        wasmadm::runtime::Command::Init,
        &Flags {
            init: upload(Some("abc")),
            ..Flags::default()
        },
        "n1",
    )
    .expect_err("a short --certificate-key is invalid")
    .to_string();
    assert!(config.contains("certificateKey"), "{config}");
    // With a file, kubeadm wants the key in it (real kubeadm v1.36.2's words).
    let mixed = kubeadm::resolve(
        Some(&fixture("init-config.yaml")),
        wasmadm::runtime::Command::Init,
        &Flags {
            init: upload(Some(KEY)),
            ..Flags::default()
        },
        "n1",
    )
    .expect_err("--certificate-key with --config")
    .to_string();
    assert!(
        mixed.starts_with("can not mix '--config' with arguments [certificate-key]"),
        "{mixed}"
    );
}

#[test]
fn the_same_key_twice_changes_nothing_and_a_new_key_uploads_again() {
    let root = node_with_pki();
    let cluster = Arc::new(MemoryCluster::new());
    run(root.path(), &cluster, upload(Some(KEY))).expect_ok();
    let first = cluster.objects();
    run(root.path(), &cluster, upload(Some(KEY))).expect_ok();
    assert_eq!(
        cluster.objects(),
        first,
        "same key, same files: nothing is written"
    );

    let out = run(root.path(), &cluster, upload(None));
    out.expect_ok();
    let key = out.output("upload-certs.certificate-key").expect("key");
    let secret = kubeadm_certs(&cluster);
    assert_decrypts_to_files(root.path(), &secret, &key);
    let tokens = secrets(&cluster).len() - 1;
    assert_eq!(tokens, 2, "a new owner token for the new upload");
}

#[test]
fn missing_files_are_empty_entries_and_an_external_ca_is_refused() {
    let root = node_with_pki();
    let pki = root.path().join("etc/kubernetes/pki");
    std::fs::remove_file(pki.join("etcd/ca.key")).expect("rm");
    let cluster = Arc::new(MemoryCluster::new());
    run(root.path(), &cluster, upload(Some(KEY))).expect_ok();
    let secret = kubeadm_certs(&cluster);
    assert_eq!(secret["data"]["etcd-ca.key"], "");
    assert_eq!(data(&secret).len(), ENTRIES.len());

    std::fs::remove_file(pki.join("ca.key")).expect("rm");
    let out = run(root.path(), &Arc::new(MemoryCluster::new()), upload(Some(KEY)));
    let err = out.error();
    assert!(err.contains("external CA"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "refused before storing anything: {:?}",
        out.stdout
    );
}

#[test]
fn the_join_command_carries_the_uploaded_key_for_control_plane_nodes() {
    // One run, as `init --upload-certs` with a controlPlaneEndpoint: the key upload-certs made is
    // the one show-join-command prints, and it opens the Secret.
    let root = fixture_node_with_endpoint();
    let pipeline = wasmadm_tests::default_pipeline_of(&[
        "certs",
        "kubeconfig",
        "upload-certs",
        "bootstrap-token",
        "show-join-command",
    ]);
    let cluster = Arc::new(MemoryCluster::new());
    let config = root.path().join("config.yaml");
    let mut run = Run::new(&pipeline, root.path());
    run.config = Some(&config);
    run.flags = Flags {
        init: upload(None),
        ..Flags::default()
    };
    run.cluster = Some(cluster.clone() as Arc<dyn Cluster>);
    let out = run.go();
    out.expect_ok();
    let key = out.output("upload-certs.certificate-key").expect("key output");
    let text = out.stdout.join("\n");
    assert!(
        text.contains(
            "You can now join any number of control-plane nodes running the following command on each as root:\n\n  \
             wasmadm join cp.example:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash sha256:"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\\\n\t--control-plane --certificate-key {key}\n\n\
             Please note that the certificate-key gives access to cluster sensitive data, keep it secret!"
        )),
        "{text}"
    );
    assert!(
        text.contains("\"wasmadm init phase upload-certs --upload-certs\" to reload certs afterward."),
        "{text}"
    );
    assert_decrypts_to_files(root.path(), &kubeadm_certs(&cluster), &key);
}

/// The fixture node with the reference configuration plus a controlPlaneEndpoint (ECDSA keys:
/// fast in wasm).
fn fixture_node_with_endpoint() -> tempfile::TempDir {
    let root = wasmadm_tests::node("healthy");
    let base = std::fs::read_to_string(fixture("init-config.yaml")).expect("fixture");
    std::fs::write(
        root.path().join("config.yaml"),
        format!("{base}controlPlaneEndpoint: cp.example:6443\nencryptionAlgorithm: ECDSA-P256\n"),
    )
    .expect("config");
    root
}
