//! The built-in `kubeconfig` plugin after `certs`, against fresh fixture roots, checked against
//! real kubeadm's files (everything but the data fields) and with the real `openssl` CLI: the
//! embedded client certificates chain to `ca.crt`, carry the right subject and clientAuth, and
//! match their keys; file modes; reuse on a second run; foreign files are errors naming them;
//! single sub-phases; external CA.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::{
    Outcome, Run, assert_leaf_extensions, fixture, node, verify_cert_and_key, write_config, x509_fields,
};

/// (file, subject as openssl prints it with RFC 2253 names).
const FILES: &[(&str, &str)] = &[
    ("admin.conf", "CN=kubernetes-admin,O=kubeadm:cluster-admins"),
    ("super-admin.conf", "CN=kubernetes-super-admin,O=system:masters"),
    ("kubelet.conf", "CN=system:node:n1,O=system:nodes"),
    ("controller-manager.conf", "CN=system:kube-controller-manager"),
    ("scheduler.conf", "CN=system:kube-scheduler"),
];

/// What real kubeadm v1.36 printed for the reference configuration (`init-output.txt`).
const KUBEADM_LINES: &[&str] = &[
    "[kubeconfig] Using kubeconfig folder \"/etc/kubernetes\"",
    "[kubeconfig] Writing \"admin.conf\" kubeconfig file",
    "[kubeconfig] Writing \"super-admin.conf\" kubeconfig file",
    "[kubeconfig] Writing \"kubelet.conf\" kubeconfig file",
    "[kubeconfig] Writing \"controller-manager.conf\" kubeconfig file",
    "[kubeconfig] Writing \"scheduler.conf\" kubeconfig file",
];

fn init(root: &Path, config: &Path, only: Option<&str>) -> Outcome {
    let pipeline = wasmadm_tests::default_pipeline_of(&["certs", "kubeconfig"]);
    let mut run = Run::new(&pipeline, root);
    run.config = Some(config);
    if let Some(sub) = only {
        run.only = Some(("kubeconfig".into(), Some(sub.into())));
    }
    run.go()
}

/// The `[kubeconfig]` lines of a run.
fn lines(out: &Outcome) -> Vec<String> {
    out.stdout
        .iter()
        .filter(|l| l.starts_with("[kubeconfig]"))
        .cloned()
        .collect()
}

fn kdir(root: &Path) -> PathBuf {
    root.join("etc/kubernetes")
}

fn ecdsa(root: &Path) -> PathBuf {
    write_config(root, "encryptionAlgorithm: ECDSA-P256\n")
}

/// The five kubeconfig files with their bytes.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    FILES
        .iter()
        .filter_map(|(f, _)| std::fs::read(kdir(root).join(f)).ok().map(|b| (f.to_string(), b)))
        .collect()
}

fn yaml(path: &Path) -> serde_yaml::Value {
    let text = std::fs::read_to_string(path).expect("read kubeconfig");
    serde_yaml::from_str(&text).expect("kubeconfig is YAML")
}

fn decode(value: &serde_yaml::Value) -> Vec<u8> {
    use base64::Engine as _;
    let text = value.as_str().expect("data field is a string");
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("data field is base64")
}

/// Replaces the data fields with the placeholders of the reference files.
fn blank_data(v: &mut serde_yaml::Value) {
    let set = |v: &mut serde_yaml::Value, key: &str, placeholder: &str| {
        if let Some(field) = v.get_mut(key) {
            *field = serde_yaml::Value::String(placeholder.into());
        }
    };
    if let Some(c) = v
        .get_mut("clusters")
        .and_then(|c| c.get_mut(0))
        .and_then(|c| c.get_mut("cluster"))
    {
        set(c, "certificate-authority-data", "<base64 PEM of ca.crt>");
    }
    if let Some(u) = v
        .get_mut("users")
        .and_then(|u| u.get_mut(0))
        .and_then(|u| u.get_mut("user"))
    {
        set(
            u,
            "client-certificate-data",
            "<base64 PEM (client-certificate-data)>",
        );
        set(u, "client-key-data", "<base64 PEM (client-key-data)>");
    }
}

/// Compares with real kubeadm's file and checks the embedded credentials with openssl.
fn verify(root: &Path, ecdsa: bool) {
    let dir = kdir(root);
    let ca_crt = root.join("etc/kubernetes/pki/ca.crt");
    let ca_pem = std::fs::read(&ca_crt).expect("ca.crt");
    let work = tempfile::tempdir().expect("tmp");
    for (file, subject) in FILES {
        let path = dir.join(file);
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}: {mode:o}");

        let mut got = yaml(&path);
        let cluster = &got["clusters"][0]["cluster"];
        assert_eq!(decode(&cluster["certificate-authority-data"]), ca_pem, "{file}");
        let user = &got["users"][0]["user"];
        let crt = work.path().join(format!("{file}.crt"));
        let key = work.path().join(format!("{file}.key"));
        std::fs::write(&crt, decode(&user["client-certificate-data"])).expect("write");
        std::fs::write(&key, decode(&user["client-key-data"])).expect("write");

        // Everything but the data fields is what kubeadm wrote. kubelet.conf is compared with
        // kubeadm's at the kubeconfig phase, before kubelet-finalize points it at the rotating
        // certificate file.
        blank_data(&mut got);
        let reference = match *file {
            "kubelet.conf" => "reference/kubeconfig-phase",
            _ => "reference/kubeconfig",
        };
        let golden = std::fs::read_to_string(fixture(reference).join(file)).expect("golden");
        let want: serde_yaml::Value = serde_yaml::from_str(&golden).expect("golden YAML");
        assert_eq!(got, want, "{file}");

        let (crt, key, ca) = (
            crt.to_string_lossy().into_owned(),
            key.to_string_lossy().into_owned(),
            ca_crt.to_string_lossy().into_owned(),
        );
        verify_cert_and_key(&ca, &crt, &key, ecdsa);
        let text = x509_fields(
            &crt,
            &[
                "-subject",
                "-ext",
                "keyUsage,extendedKeyUsage,basicConstraints",
                "-dates",
            ],
        );
        assert!(text.contains(&format!("subject={subject}\n")), "{file}: {text}");
        assert_leaf_extensions(&text, "TLS Web Client Authentication", file);
    }
}

#[test]
fn ecdsa_p256_kubeconfigs_match_kubeadms() {
    let root = node("healthy");
    let config = ecdsa(root.path());
    let out = init(root.path(), &config, None);
    out.expect_ok();
    assert_eq!(lines(&out), KUBEADM_LINES);
    verify(root.path(), true);
}

#[test]
fn rsa_2048_kubeconfigs_match_kubeadms() {
    let root = node("healthy");
    let out = init(root.path(), &fixture("init-config.yaml"), None);
    out.expect_ok();
    assert_eq!(lines(&out), KUBEADM_LINES);
    verify(root.path(), false);
}

#[test]
fn second_run_reuses_every_file() {
    let root = node("healthy");
    let config = ecdsa(root.path());
    init(root.path(), &config, None).expect_ok();
    let before = snapshot(root.path());
    assert_eq!(before.len(), 5);
    let out = init(root.path(), &config, None);
    out.expect_ok();
    assert_eq!(snapshot(root.path()), before);
    let mut want = vec!["[kubeconfig] Using kubeconfig folder \"/etc/kubernetes\"".to_string()];
    want.extend(
        FILES
            .iter()
            .map(|(f, _)| format!("[kubeconfig] Using existing kubeconfig file: \"/etc/kubernetes/{f}\"")),
    );
    assert_eq!(lines(&out), want);
}

#[test]
fn control_plane_endpoint_is_the_server_of_admin_and_kubelet_only() {
    let root = node("healthy");
    let config = write_config(
        root.path(),
        "encryptionAlgorithm: ECDSA-P256\ncontrolPlaneEndpoint: lb.example.com\n",
    );
    init(root.path(), &config, None).expect_ok();
    for (file, _) in FILES {
        let v = yaml(&kdir(root.path()).join(file));
        let server = v["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let want = match *file {
            "controller-manager.conf" | "scheduler.conf" => "https://10.200.0.2:6443",
            _ => "https://lb.example.com:6443",
        };
        assert_eq!(server, want, "{file}");
    }
}

#[test]
fn foreign_or_broken_files_are_errors_naming_the_file() {
    let root = node("healthy");
    let config = ecdsa(root.path());
    init(root.path(), &config, None).expect_ok();
    let dir = kdir(root.path());

    // Another API server.
    let admin = dir.join("admin.conf");
    let good = std::fs::read_to_string(&admin).expect("read");
    let moved = good.replace("https://10.200.0.2:6443", "https://192.0.2.9:6443");
    std::fs::write(&admin, &moved).expect("write");
    init(root.path(), &config, None).expect_error(&[
        "/etc/kubernetes/admin.conf",
        "unexpected API Server URL",
        "https://192.0.2.9:6443",
    ]);
    assert_eq!(
        std::fs::read_to_string(&admin).expect("read"),
        moved,
        "left as it was"
    );
    std::fs::write(&admin, &good).expect("restore");

    // Garbage.
    let sched = dir.join("scheduler.conf");
    std::fs::write(&sched, b"\x00garbage: [\xff").expect("write");
    let err = init(root.path(), &config, None).error();
    assert!(err.contains("/etc/kubernetes/scheduler.conf"), "{err}");
    std::fs::remove_file(&sched).expect("rm");

    // Another CA: a second cluster's file.
    let other = node("healthy");
    init(other.path(), &ecdsa(other.path()), None).expect_ok();
    std::fs::copy(kdir(other.path()).join("kubelet.conf"), dir.join("kubelet.conf")).expect("cp");
    init(root.path(), &config, None).expect_error(&["/etc/kubernetes/kubelet.conf", "unexpected CA cert"]);
}

#[test]
fn phase_kubeconfig_admin_writes_only_admin_conf() {
    let root = node("healthy");
    let config = ecdsa(root.path());
    // The CA from the certs phase alone.
    let pipeline = Pipeline::builtin_default().expect("default pipeline");
    let mut run = Run::new(&pipeline, root.path());
    run.config = Some(&config);
    run.only = Some(("certs".into(), Some("all".into())));
    run.go().expect_ok();
    assert!(snapshot(root.path()).is_empty());

    let out = init(root.path(), &config, Some("admin"));
    out.expect_ok();
    assert_eq!(
        out.stdout,
        ["[kubeconfig] Writing \"admin.conf\" kubeconfig file"]
    );
    let files: Vec<String> = snapshot(root.path()).into_keys().collect();
    assert_eq!(files, ["admin.conf"]);

    // Without a CA it says which file is missing.
    let empty = node("healthy");
    let err = init(empty.path(), &config, Some("admin")).error();
    assert!(err.contains("/etc/kubernetes/pki/ca.crt"), "{err}");
}

#[test]
fn external_ca_uses_the_files_and_refuses_to_invent_them() {
    let root = node("healthy");
    let config = ecdsa(root.path());
    init(root.path(), &config, None).expect_ok();
    std::fs::remove_file(root.path().join("etc/kubernetes/pki/ca.key")).expect("rm");
    let before = snapshot(root.path());
    let out = init(root.path(), &config, None);
    out.expect_ok();
    assert_eq!(
        lines(&out)[1],
        "[kubeconfig] External CA mode: Using user provided admin.conf"
    );
    assert_eq!(snapshot(root.path()), before);

    std::fs::remove_file(kdir(root.path()).join("scheduler.conf")).expect("rm");
    init(root.path(), &config, None).expect_error(&["external", "/etc/kubernetes/scheduler.conf"]);
}
