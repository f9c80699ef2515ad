//! The `etcd` and `control-plane` phases against real kubeadm's output: with the reference
//! configuration, every manifest must be byte for byte what kubeadm v1.36 wrote
//! (`tests/fixtures/reference/manifests`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::{Outcome, Run, fixture, node, run_phases};

const MANIFESTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

fn run_manifests(root: &Path, config: &Path, skip: &[&str]) -> Outcome {
    let pipeline = wasmadm_tests::default_pipeline_of(&["etcd", "control-plane"]);
    let mut run = Run::new(&pipeline, root);
    run.config = Some(config);
    run.flags.skip_phases = skip.iter().map(|s| s.to_string()).collect();
    let out = run.go();
    assert!(out.result.is_ok(), "{} {:?}", out.error(), out.stderr);
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

fn manifest(root: &Path, name: &str) -> String {
    std::fs::read_to_string(root.join(format!("etc/kubernetes/manifests/{name}.yaml"))).expect("manifest")
}

/// Each manifest under `root` is byte for byte kubeadm's in `tests/fixtures/<golden>`.
fn assert_manifests_equal(root: &Path, golden: &str) {
    for name in MANIFESTS {
        let want = std::fs::read_to_string(fixture(&format!("{golden}/{name}.yaml"))).expect("golden");
        assert_eq!(
            manifest(root, name),
            want,
            "{name}.yaml differs from kubeadm's {golden}"
        );
    }
}

#[test]
fn manifests_match_real_kubeadm_byte_for_byte() {
    let root = node("healthy");
    let out = run_manifests(root.path(), &fixture("init-config.yaml"), &[]);
    assert_manifests_equal(root.path(), "reference/manifests");
    for name in MANIFESTS {
        assert_eq!(
            mode(&root.path().join(format!("etc/kubernetes/manifests/{name}.yaml"))),
            0o600
        );
    }
    assert_eq!(mode(&root.path().join("etc/kubernetes/manifests")), 0o700);
    assert_eq!(mode(&root.path().join("var/lib/etcd")), 0o700);
    assert_eq!(
        out.stdout,
        [
            "[etcd] Creating static Pod manifest for local etcd in \"/etc/kubernetes/manifests\"",
            "[control-plane] Using manifest folder \"/etc/kubernetes/manifests\"",
            "[control-plane] Creating static Pod manifest for \"kube-apiserver\"",
            "[control-plane] Creating static Pod manifest for \"kube-controller-manager\"",
            "[control-plane] Creating static Pod manifest for \"kube-scheduler\"",
        ]
    );
}

/// The second configuration (`reference/extra-args`): `extraArgs` added, overriding defaults and
/// repeated for all four components (a `bind-address` and `listen-metrics-urls` that move the
/// probes), extra volumes (one without `pathType`), extra env; and its IPv6 variant (etcd's `::1`
/// listeners and probes). Every manifest is byte for byte what kubeadm v1.36 wrote for them.
#[test]
fn extra_args_volumes_env_and_ipv6_match_real_kubeadm_byte_for_byte() {
    for (config, golden) in [
        ("init-config.yaml", "manifests"),
        ("ipv6-config.yaml", "manifests-ipv6"),
    ] {
        let root = node("healthy");
        let dir = "reference/extra-args";
        run_phases(
            root.path(),
            &fixture(&format!("{dir}/{config}")),
            &["etcd", "control-plane"],
        );
        assert_manifests_equal(root.path(), &format!("{dir}/{golden}"));
    }
}

/// kubeadm hands every variable of its environment whose name ends with `_proxy`, in any case,
/// to the API server, controller-manager and scheduler, merged with their `extraEnvs` (not to
/// etcd). wasmadm does the same through the control-plane phase's `env: ["*_proxy"]` grant: the
/// command runs with kubeadm's environment (`capture.sh`), and its manifests are kubeadm's.
#[test]
fn proxy_variables_of_the_environment_reach_the_manifests_as_with_kubeadm() {
    let root = node("healthy");
    let cache = tempfile::tempdir().expect("cache");
    let config = fixture("reference/extra-args/init-config.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmadm-under-test"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("WASMADM_CACHE_DIR", cache.path())
        .env("HTTPS_PROXY", "http://proxy.example:3128")
        .env("http_proxy", "http://proxy.example:3128")
        .env("NO_PROXY", "10.0.0.0/8,.svc")
        .env("Foo_Proxy", "f")
        .env("NOT_A_PROXY_URL", "x")
        .arg("--root")
        .arg(root.path())
        .args(["init", "phase", "control-plane", "all", "--config"])
        .arg(&config)
        .output()
        .expect("run wasmadm");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in &MANIFESTS[1..] {
        let want = std::fs::read_to_string(fixture(&format!(
            "reference/extra-args/manifests-proxy/{name}.yaml"
        )))
        .expect("golden");
        assert_eq!(
            manifest(root.path(), name),
            want,
            "{name}.yaml differs from kubeadm's"
        );
    }
}

#[test]
fn configuration_reaches_the_manifests() {
    let root = node("healthy");
    std::fs::create_dir_all(root.path().join("etc/ca-certificates")).expect("mkdir");
    let config = root.path().join("config.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint: {advertiseAddress: 10.0.0.5, bindPort: 8443}\n\
         nodeRegistration: {name: cp1}\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
         kubernetesVersion: v1.36.2\nnetworking: {podSubnet: 10.244.0.0/16}\n\
         apiServer:\n  extraArgs: [{name: authorization-mode, value: 'Node,RBAC,Webhook'}, {name: audit-log-path, value: /var/log/audit.log}]\n\
         etcd:\n  local:\n    dataDir: /srv/etcd\n    extraArgs: [{name: snapshot-count, value: '5000'}]\n",
    )
    .expect("write");
    // A custom etcd data dir needs its grant: the test's pipeline adds it.
    let yaml = Pipeline::DEFAULT_YAML.replace(
        "write: [/etc/kubernetes/manifests, /var/lib/etcd]",
        "write: [/etc/kubernetes/manifests, /srv/etcd]",
    );
    let pipeline = wasmadm_tests::with_init_phases(
        Pipeline::parse(&yaml, Path::new("p.yaml")).expect("pipeline"),
        &["etcd", "control-plane"],
    );
    let mut run = Run::new(&pipeline, root.path());
    run.config = Some(&config);
    let out = run.go();
    assert!(out.result.is_ok(), "{}", out.error());

    let apiserver = manifest(root.path(), "kube-apiserver");
    assert!(
        apiserver.contains("- --authorization-mode=Node,RBAC,Webhook\n"),
        "{apiserver}"
    );
    assert!(!apiserver.contains("--authorization-mode=Node,RBAC\n"));
    assert!(
        apiserver.contains(
            "    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key\n    \
             - --authorization-mode=Node,RBAC,Webhook\n    - --audit-log-path=/var/log/audit.log\n"
        ),
        "the extra args follow the sorted defaults, in the configuration's order: {apiserver}"
    );
    assert!(apiserver.contains("- --secure-port=8443"));
    assert!(apiserver.contains("kube-apiserver.advertise-address.endpoint: 10.0.0.5:8443"));
    assert!(
        apiserver.contains("name: etc-ca-certificates"),
        "CA dir that exists is mounted: {apiserver}"
    );
    let kcm = manifest(root.path(), "kube-controller-manager");
    assert!(
        kcm.contains("- --allocate-node-cidrs=true") && kcm.contains("- --cluster-cidr=10.244.0.0/16"),
        "{kcm}"
    );
    let etcd = manifest(root.path(), "etcd");
    assert!(
        etcd.contains("- --data-dir=/srv/etcd") && etcd.contains("- --snapshot-count=5000"),
        "{etcd}"
    );
    assert!(
        etcd.contains("- --initial-cluster=cp1=https://10.0.0.5:2380"),
        "{etcd}"
    );
    assert_eq!(mode(&root.path().join("srv/etcd")), 0o700);
}

#[test]
fn sub_phases_can_be_skipped_and_external_etcd_writes_no_etcd_manifest() {
    let root = node("healthy");
    let config = root.path().join("config.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint: {advertiseAddress: 10.0.0.5}\n---\n\
         apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\netcd:\n  external:\n    endpoints: [https://10.0.0.9:2379]\n    \
         caFile: /etc/etcd/ca.crt\n    certFile: /etc/etcd/client.crt\n    keyFile: /etc/etcd/client.key\n",
    )
    .expect("write");
    run_manifests(root.path(), &config, &["control-plane/scheduler"]);
    let dir = root.path().join("etc/kubernetes/manifests");
    assert!(!dir.join("etcd.yaml").exists());
    assert!(!dir.join("kube-scheduler.yaml").exists());
    let apiserver = manifest(root.path(), "kube-apiserver");
    assert!(
        apiserver.contains("- --etcd-servers=https://10.0.0.9:2379"),
        "{apiserver}"
    );
    assert!(
        apiserver.contains("- --etcd-cafile=/etc/etcd/ca.crt"),
        "{apiserver}"
    );
}
