//! The built-in preflight plugin against fixture node roots: a healthy node passes; each broken
//! condition is reported under kubeadm's check name and message; ignore lists demote errors.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use wasmadm::config::kubeadm::Flags;
use wasmadm::runtime::{Command, RunError};
use wasmadm_tests::{Outcome, Run, default_pipeline, fixture, node};

/// `wasmadm init phase preflight` with the reference configuration.
fn init(root: &Path, ignore: &[&str]) -> Outcome {
    let pipeline = default_pipeline();
    let mut run = Run::new(&pipeline, root);
    run.only = Some(("preflight".into(), None));
    let config = fixture("init-config.yaml");
    run.config = Some(&config);
    run.flags = Flags {
        ignore_preflight_errors: ignore.iter().map(|s| s.to_string()).collect(),
        ..Flags::default()
    };
    run.go()
}

/// The `[ERROR name]: message` pairs of a failed run.
fn failures(out: &Outcome) -> Vec<(String, String)> {
    match &out.result {
        Err(RunError::ChecksFailed { failures, .. }) => failures.clone(),
        other => panic!(
            "expected failed checks, got {:?}; stderr {:?}",
            other.as_ref().err(),
            out.stderr
        ),
    }
}

fn write(root: &Path, path: &str, content: &str) {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, content).expect("write");
}

#[test]
fn healthy_node_passes_without_warnings() {
    let root = node("healthy");
    let out = init(root.path(), &[]);
    assert!(out.result.is_ok(), "{:?}", out.stderr);
    assert_eq!(out.stdout[0], "[preflight] Running pre-flight checks");
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
}

#[test]
fn every_failing_check_is_reported_with_kubeadms_name() {
    let root = node("healthy");
    let r = root.path();
    write(
        r,
        "/proc/self/status",
        "Uid:\t0\t0\t0\t0\nCpus_allowed_list:\t0\n",
    );
    write(r, "/proc/meminfo", "MemTotal:        1024000 kB\n");
    // A listener on 6443 (0x192B) and on 2379 (0x094B), IPv4 and IPv6 tables.
    write(
        r,
        "/proc/net/tcp",
        "  sl  local_address rem_address   st\n   0: 00000000:192B 00000000:0000 0A 0\n",
    );
    write(
        r,
        "/proc/net/tcp6",
        "  sl  local_address remote_address st\n   0: 00000000000000000000000000000000:094B 00000000000000000000000000000000:0000 0A 0\n",
    );
    write(r, "/etc/kubernetes/manifests/kube-apiserver.yaml", "old");
    write(r, "/var/lib/etcd/member/snap", "data");
    write(r, "/proc/sys/net/ipv4/ip_forward", "0\n");
    std::fs::remove_file(r.join("usr/bin/losetup")).expect("rm");
    std::fs::set_permissions(r.join("usr/bin/cp"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    write(r, "/usr/bin/kubelet", "#!/bin/sh\necho 'Kubernetes v1.30.1'\n");
    std::fs::set_permissions(r.join("usr/bin/kubelet"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::remove_file(r.join("var/run/containerd/containerd.sock")).expect("rm");

    let out = init(r, &[]);
    let got = failures(&out);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "NumCPU",
            "Mem",
            "Port-6443",
            "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
            "CRI",
            "ContainerRuntimeVersion",
            "FileExisting-losetup",
            "FileExisting-cp",
            "KubeletVersion",
            "FileContent--proc-sys-net-ipv4-ip_forward",
            "Port-2379",
            "DirAvailable--var-lib-etcd",
        ]
    );
    let message = |n: &str| {
        got.iter()
            .find(|(k, _)| k == n)
            .map(|(_, m)| m.as_str())
            .unwrap_or_default()
    };
    assert_eq!(
        message("NumCPU"),
        "the number of available CPUs 1 is less than the required 2"
    );
    assert_eq!(
        message("Mem"),
        "the system RAM (1000 MB) is less than the minimum 1700 MB"
    );
    assert_eq!(message("Port-6443"), "Port 6443 is in use");
    assert_eq!(
        message("FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml"),
        "/etc/kubernetes/manifests/kube-apiserver.yaml already exists"
    );
    assert_eq!(
        message("FileExisting-losetup"),
        "losetup not found in system path"
    );
    assert_eq!(message("FileExisting-cp"), "cp not found in system path");
    assert_eq!(
        message("KubeletVersion"),
        "Kubelet version \"v1.30.1\" is lower than kubeadm can support. Please upgrade kubelet"
    );
    assert_eq!(
        message("FileContent--proc-sys-net-ipv4-ip_forward"),
        "/proc/sys/net/ipv4/ip_forward contents are not set to 1"
    );
    assert_eq!(
        message("DirAvailable--var-lib-etcd"),
        "/var/lib/etcd is not empty"
    );
    assert!(message("CRI").contains("dial unix /var/run/containerd/containerd.sock: connect: no such file"));
    // kubeadm's layout of the failure block.
    assert_eq!(
        out.stderr.first().map(String::as_str),
        Some("[preflight] Some fatal errors occurred:")
    );
    assert_eq!(
        out.stderr.last().map(String::as_str),
        Some(
            "[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`"
        )
    );
    assert_eq!(out.result.as_ref().err().map(RunError::exit_code), Some(2));
    // A failed preflight does not go on to pull images.
    assert!(!out.stdout.iter().any(|l| l.contains("Pulling images")));
}

#[test]
fn warnings_do_not_fail_the_run() {
    let root = node("healthy");
    let r = root.path();
    write(
        r,
        "/proc/swaps",
        "Filename Type Size Used Priority\n/swapfile file 1024 0 -2\n",
    );
    write(r, "/proc/sys/kernel/osrelease", "4.19.0\n");
    write(r, "/etc/hosts", "127.0.0.1 localhost\n");
    write(
        r,
        "/usr/bin/systemctl",
        "#!/bin/sh\ncase \"$1 $2\" in\n\"is-active firewalld\") echo active;;\n\"is-enabled kubelet\") exit 1;;\nesac\nexit 0\n",
    );
    let out = init(r, &[]);
    assert!(out.result.is_ok(), "{:?}", out.stderr);
    let expected = [
        "\t[WARNING Firewalld]: firewalld is active, please ensure ports [6443 10250] are open or your cluster may not function correctly",
        "\t[WARNING Swap]: swap is supported for cgroup v2 only. The kubelet must be properly configured to use swap. Please refer to https://kubernetes.io/docs/concepts/architecture/nodes/#swap-memory, or disable swap on the node",
        "\t[WARNING SystemVerification]: unsupported kernel release: 4.19.0",
        "\t[WARNING Hostname]: hostname \"n1\" could not be reached",
    ];
    for line in expected {
        assert!(
            out.stderr.iter().any(|l| l == line),
            "missing {line:?} in {:#?}",
            out.stderr
        );
    }
    assert!(
        out.stderr.iter().any(|l| l == "\t[WARNING Service-kubelet]: kubelet service is not enabled, please run 'systemctl enable kubelet.service'"),
        "{:#?}",
        out.stderr
    );
}

/// Real kubeadm v1.36.2 on a cgroup-v1 machine without a kubelet printed only
/// `[ERROR SystemVerification]: couldn't get kubelet version: ...`: no cgroups warning, no
/// "system verification failed" block.
#[test]
fn without_a_kubelet_system_verification_reports_only_that() {
    let root = node("healthy");
    let r = root.path();
    std::fs::remove_file(r.join("usr/bin/kubelet")).expect("no kubelet");
    std::fs::remove_file(r.join("sys/fs/cgroup/cgroup.controllers")).expect("cgroup v1");
    let out = init(r, &[]);
    let lines: Vec<&String> = out
        .stdout
        .iter()
        .chain(&out.stderr)
        .filter(|l| l.contains("SystemVerification") || l.contains("system verification"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("\t[ERROR SystemVerification]: couldn't get kubelet version: "),
        "{lines:#?}"
    );
    assert!(
        !out.stderr
            .iter()
            .chain(&out.stdout)
            .any(|l| l.contains("cgroups v1"))
    );
}

#[test]
fn no_init_system_is_a_warning_as_in_kubeadm() {
    let root = node("healthy");
    std::fs::remove_file(root.path().join("usr/bin/systemctl")).expect("rm");
    let out = init(root.path(), &[]);
    assert!(out.result.is_ok(), "{:?}", out.stderr);
    for check in ["Firewalld", "Service-kubelet"] {
        let line =
            format!("\t[WARNING {check}]: no supported init system detected, skipping checking for services");
        assert!(out.stderr.contains(&line), "{:#?}", out.stderr);
    }
}

#[test]
fn root_check_runs_first_and_alone() {
    let root = node("healthy");
    write(
        root.path(),
        "/proc/self/status",
        "Uid:\t1000\t1000\t1000\t1000\nCpus_allowed_list:\t0\n",
    );
    let out = init(root.path(), &[]);
    assert_eq!(
        failures(&out),
        vec![(
            "IsPrivilegedUser".to_string(),
            "user is not running as root".to_string()
        )]
    );
}

#[test]
fn ignored_errors_become_warnings_case_insensitively() {
    let root = node("healthy");
    write(
        root.path(),
        "/proc/self/status",
        "Uid:\t0\t0\t0\t0\nCpus_allowed_list:\t0\n",
    );
    write(root.path(), "/proc/sys/net/ipv4/ip_forward", "0\n");
    let out = init(
        root.path(),
        &["numcpu", "FILECONTENT--proc-sys-net-ipv4-ip_forward"],
    );
    assert!(out.result.is_ok(), "{:?}", out.stderr);
    assert!(out.stderr.contains(
        &"\t[WARNING NumCPU]: the number of available CPUs 1 is less than the required 2".to_string()
    ));
    assert!(
        out.stderr
            .iter()
            .any(|l| l.starts_with("\t[WARNING FileContent--proc-sys-net-ipv4-ip_forward]"))
    );
}

#[test]
fn ignore_all_demotes_everything_and_config_list_counts_too() {
    let root = node("healthy");
    write(root.path(), "/proc/meminfo", "MemTotal: 10 kB\n");
    let out = init(root.path(), &["all"]);
    assert!(out.result.is_ok(), "{:?}", out.stderr);
    assert!(out.stderr.iter().any(|l| l.starts_with("\t[WARNING Mem]")));

    // nodeRegistration.ignorePreflightErrors in the file works the same way. (The address is
    // for the kubeconfig phase, which cannot detect it.)
    let config = root.path().join("config.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint: {advertiseAddress: 10.200.0.2}\nnodeRegistration:\n  ignorePreflightErrors: [Mem]\n",
    )
    .expect("write");
    let pipeline = default_pipeline();
    let mut run = Run::new(&pipeline, root.path());
    run.config = Some(&config);
    run.only = Some(("preflight".into(), None));
    let out = run.go();
    assert!(out.result.is_ok(), "{:?}", out.stderr);
}

#[test]
fn all_combined_with_names_is_a_config_error() {
    let err = wasmadm::config::kubeadm::resolve(
        None,
        Command::Init,
        &Flags {
            ignore_preflight_errors: vec!["all".into(), "Swap".into()],
            ..Flags::default()
        },
        "n1",
    )
    .expect_err("invalid");
    assert!(
        err.to_string()
            .contains("don't specify individual checks if 'all' is used"),
        "{err}"
    );
}

#[test]
fn join_checks_use_kubeadms_join_list() {
    let root = node("healthy");
    write(root.path(), "/etc/kubernetes/kubelet.conf", "x");
    write(root.path(), "/etc/kubernetes/pki/ca.crt", "x");
    let pipeline = default_pipeline();
    let mut run = Run::new(&pipeline, root.path());
    run.command = Command::Join;
    let config = fixture("join-config.yaml");
    run.config = Some(&config);
    let out = run.go();
    let names: Vec<String> = failures(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "FileAvailable--etc-kubernetes-kubelet.conf",
            "FileAvailable--etc-kubernetes-pki-ca.crt"
        ]
    );
}

#[test]
fn reset_runs_only_the_root_check() {
    let root = node("healthy");
    write(root.path(), "/proc/meminfo", "MemTotal: 10 kB\n");
    let pipeline = default_pipeline();
    let mut run = Run::new(&pipeline, root.path());
    run.command = Command::Reset;
    let out = run.go();
    assert!(out.result.is_ok(), "{:?}", out.stderr);
    write(root.path(), "/proc/self/status", "Uid:\t1000\t1000\t1000\t1000\n");
    let mut run = Run::new(&pipeline, root.path());
    run.command = Command::Reset;
    assert_eq!(failures(&run.go())[0].0, "IsPrivilegedUser");
}

#[test]
fn proxy_settings_are_read_only_from_granted_env() {
    // The default pipeline grants HTTPS_PROXY/NO_PROXY; a node whose advertise address is not
    // excluded gets kubeadm's HTTPProxy warning. (Run in a child process so the test's own
    // environment is not changed for the other tests.)
    if std::env::var_os("WASMADM_PROXY_CHILD").is_none() {
        let status = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "proxy_settings_are_read_only_from_granted_env",
                "--nocapture",
            ])
            .env("WASMADM_PROXY_CHILD", "1")
            .env("HTTPS_PROXY", "http://proxy.example:3128")
            .env("NO_PROXY", "10.96.0.0/12")
            .status()
            .expect("child");
        assert!(status.success());
        return;
    }
    let root = node("healthy");
    let out = init(root.path(), &[]);
    assert!(
        out.stderr.contains(
            &"\t[WARNING HTTPProxy]: Connection to \"https://10.200.0.2\" uses proxy \"http://proxy.example:3128\". If that is not intended, adjust your proxy settings".to_string()
        ),
        "{:#?}",
        out.stderr
    );
    assert!(
        !out.stderr.iter().any(|l| l.contains("HTTPProxyCIDR")),
        "service CIDR is in NO_PROXY: {:#?}",
        out.stderr
    );
}
