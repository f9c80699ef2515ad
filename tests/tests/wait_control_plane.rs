//! The `wait-control-plane` plugin against real endpoints on 127.0.0.1: an HTTP kubelet healthz
//! and three HTTPS components (the API server's certificate signed by the node's cluster CA and
//! checked against it; the controller-manager's and scheduler's self-signed, checked insecurely
//! as kubeadm does). The console lines are compared with kubeadm's (init-output.txt 53-62).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmadm::cluster::memory::MemoryCluster;
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::http::{Reply, Server, TestPki, serve};
use wasmadm_tests::{Outcome, Run, fixture, node};

/// A node root with the reference manifests and CA, and servers standing in for its components.
struct Node {
    root: tempfile::TempDir,
    kubelet: Server,
    apiserver: Server,
    kcm: Server,
    scheduler: Server,
}

/// What each endpoint answers.
struct Replies {
    kubelet: Reply,
    apiserver: Reply,
    kcm: Reply,
    scheduler: Reply,
    /// Serve the API server with a certificate from a CA other than the node's.
    foreign_apiserver_cert: bool,
}

impl Default for Replies {
    fn default() -> Self {
        let ok = || Reply::Status(200, "ok".into());
        Self {
            kubelet: ok(),
            apiserver: ok(),
            kcm: ok(),
            scheduler: ok(),
            foreign_apiserver_cert: false,
        }
    }
}

/// What real kubeadm v1.36 printed for the reference configuration.
fn kubeadm_output() -> String {
    std::fs::read_to_string(fixture("reference/init-output.txt")).expect("reference/init-output.txt")
}

/// A static Pod manifest kubeadm wrote for the reference configuration.
fn manifest(name: &str) -> String {
    std::fs::read_to_string(fixture("reference/manifests").join(format!("{name}.yaml"))).expect("manifest")
}

impl Node {
    fn start(replies: Replies) -> Self {
        let root = node("healthy");
        let cluster_ca = TestPki::new("kubernetes");
        let foreign = TestPki::new("not-the-cluster-ca");
        let api_pki = if replies.foreign_apiserver_cert {
            &foreign
        } else {
            &cluster_ca
        };
        let node = Node {
            kubelet: serve(replies.kubelet, None),
            apiserver: serve(replies.apiserver, Some(api_pki.server_config())),
            kcm: serve(replies.kcm, Some(TestPki::new("kcm-self-signed").server_config())),
            scheduler: serve(
                replies.scheduler,
                Some(TestPki::new("scheduler-self-signed").server_config()),
            ),
            root,
        };
        let dir = node.root.path().join("etc/kubernetes");
        std::fs::create_dir_all(dir.join("pki")).expect("mkdir pki");
        std::fs::create_dir_all(dir.join("manifests")).expect("mkdir manifests");
        std::fs::write(dir.join("pki/ca.crt"), &cluster_ca.ca_pem).expect("ca");
        // kubeadm's manifests, on this test's ports (as extraArgs would set them).
        let api = manifest("kube-apiserver")
            .replace("--advertise-address=10.200.0.2", "--advertise-address=127.0.0.1")
            .replace(
                "--secure-port=6443",
                &format!("--secure-port={}", node.apiserver.port),
            );
        let with_port = |name: &str, port: u16| {
            manifest(name).replace(
                &format!("    - {name}\n"),
                &format!("    - {name}\n    - --secure-port={port}\n"),
            )
        };
        std::fs::write(dir.join("manifests/kube-apiserver.yaml"), api).expect("write");
        for (name, port) in [
            ("kube-controller-manager", node.kcm.port),
            ("kube-scheduler", node.scheduler.port),
        ] {
            std::fs::write(dir.join(format!("manifests/{name}.yaml")), with_port(name, port)).expect("write");
        }
        node
    }

    /// The kubeadm configuration: this node's API endpoint and kubelet port, and `timeouts`.
    fn config(&self, timeouts: &str) -> std::path::PathBuf {
        let path = self.root.path().join("init-config.yaml");
        let yaml = format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             localAPIEndpoint: {{advertiseAddress: 127.0.0.1, bindPort: {}}}\n\
             nodeRegistration: {{name: n1, criSocket: unix:///var/run/containerd/containerd.sock}}\n{timeouts}\
             ---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.36.2\n\
             ---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nhealthzPort: {}\n",
            self.apiserver.port, self.kubelet.port
        );
        std::fs::write(&path, yaml).expect("config");
        path
    }

    /// The default pipeline's wait-control-plane phase with this node's ports; `skip` leaves the
    /// grant of one component out.
    fn pipeline(&self, skip: Option<&str>) -> Pipeline {
        let mut grants = vec![
            format!("        - url: http://127.0.0.1:{}/healthz\n", self.kubelet.port),
            "        - {url: \"https://{advertiseAddress}:{bindPort}/livez\", tls: verify, ca: /etc/kubernetes/pki/ca.crt}\n"
                .to_string(),
            format!("        - {{url: \"https://127.0.0.1:{}/healthz\", tls: insecure}}\n", self.kcm.port),
            format!("        - {{url: \"https://127.0.0.1:{}/livez\", tls: insecure}}\n", self.scheduler.port),
        ];
        if let Some(s) = skip {
            grants.retain(|g| !g.contains(s));
        }
        let yaml = format!(
            "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: wait-control-plane\n    \
             component: builtin:wait-control-plane\n    grants:\n      files:\n        \
             read: [/etc/kubernetes/manifests, /etc/kubernetes/pki/ca.crt]\n      health:\n{}    \
             limits: {{timeout: 120s}}\n",
            grants.concat()
        );
        Pipeline::parse(&yaml, Path::new("wait-pipeline.yaml")).expect("pipeline")
    }

    fn run(&self, pipeline: &Pipeline, timeouts: &str) -> Outcome {
        let config = self.config(timeouts);
        let mut run = Run::new(pipeline, self.root.path());
        run.config = Some(&config);
        // Real requests to the test's servers, not the in-memory cluster's simulated node.
        run.no_cluster = true;
        run.go()
    }
}

/// A console line with durations and this run's ports replaced, to compare with kubeadm's.
fn normalize(line: &str) -> String {
    let mut out = String::new();
    for word in line.split(' ') {
        let is_duration = word.ends_with('s')
            && word.chars().next().is_some_and(|c| c.is_ascii_digit())
            && word
                .trim_end_matches(['s', 'm', 'µ', 'n', 'h'])
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == 'm' || c == 'h');
        if !out.is_empty() {
            out.push(' ');
        }
        if is_duration {
            out.push_str("<duration>");
        } else if let Some(i) = word.find("127.0.0.1:").or_else(|| word.find("10.200.0.2:")) {
            let rest = &word[i..];
            let host_end = rest.find(':').unwrap_or(0);
            let port_end = rest[host_end + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(rest.len(), |p| host_end + 1 + p);
            out.push_str(&word[..i]);
            out.push_str("<ip>:<port>");
            out.push_str(&rest[port_end..]);
        } else {
            out.push_str(word);
        }
    }
    out
}

#[test]
fn healthy_components_print_kubeadms_lines() {
    let node = Node::start(Replies::default());
    let out = node.run(&node.pipeline(None), "");
    assert!(out.result.is_ok(), "{}: {:?}", out.error(), out.stdout);
    let want: Vec<String> = kubeadm_output()
        .lines()
        .skip(52)
        .take(10)
        .map(normalize)
        .collect();
    let got: Vec<String> = out.stdout.iter().map(|l| normalize(l)).collect();
    // The first six lines come in kubeadm's order; the "is healthy" lines in the order the
    // components answered, which varies run to run.
    assert_eq!(got[..7], want[..7], "got {:#?}", out.stdout);
    let mut got_tail = got[7..].to_vec();
    let mut want_tail = want[7..].to_vec();
    got_tail.sort();
    want_tail.sort();
    assert_eq!(got_tail, want_tail, "got {:#?}", out.stdout);
    assert!(out.stdout[1].ends_with("This can take up to 4m0s"));
    assert!(out.stdout[4].contains(&format!("https://127.0.0.1:{}/livez", node.apiserver.port)));
    for s in [&node.kubelet, &node.apiserver, &node.kcm, &node.scheduler] {
        assert_eq!(
            s.requests.lock().expect("requests").len(),
            1,
            "one request each when healthy"
        );
    }
}

#[test]
fn a_slow_kubelet_is_polled_until_healthy() {
    let node = Node::start(Replies {
        kubelet: Reply::FailFirst(3, 503),
        ..Default::default()
    });
    let start = Instant::now();
    let out = node.run(&node.pipeline(None), "");
    assert!(out.result.is_ok(), "{}", out.error());
    assert_eq!(node.kubelet.hits(), 4, "three failures, then healthy");
    // kubeadm's 500ms between attempts.
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let healthy = out
        .stdout
        .iter()
        .find(|l| l.contains("The kubelet is healthy after"))
        .expect("line");
    assert!(
        healthy.ends_with('s') && !healthy.contains("simulated"),
        "{healthy}"
    );
}

#[test]
fn an_unhealthy_kubelet_times_out_with_kubeadms_help() {
    let node = Node::start(Replies {
        kubelet: Reply::Status(500, "unhealthy".into()),
        ..Default::default()
    });
    let start = Instant::now();
    let out = node.run(&node.pipeline(None), "timeouts: {kubeletHealthCheck: 1s}\n");
    let err = out.error();
    let url = node.kubelet.url("http", "/healthz");
    assert_eq!(
        err,
        format!(
            "error execution phase wait-control-plane: failed while waiting for the kubelet to start: \
             The HTTP call equal to 'curl -sSL {url}' returned status code: 500"
        )
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(out.stdout.contains(&format!(
        "[kubelet-check] Waiting for a healthy kubelet at {url}. This can take up to 1s"
    )));
    assert!(
        out.stdout
            .iter()
            .any(|l| l.starts_with("[kubelet-check] The kubelet is not healthy after 1"))
    );
    for help in [
        "Unfortunately, an error has occurred, likely caused by:",
        "\t- 'journalctl -xeu kubelet'",
    ] {
        assert!(
            out.stdout.iter().any(|l| l == help),
            "{help:?} in {:#?}",
            out.stdout
        );
    }
    assert_eq!(
        node.apiserver.hits(),
        0,
        "the control plane is not checked without a kubelet"
    );
}

#[test]
fn a_component_that_stays_unhealthy_fails_with_each_error_and_crictl_hints() {
    let node = Node::start(Replies {
        scheduler: Reply::Status(503, "[-]ping failed".into()),
        ..Default::default()
    });
    let out = node.run(
        &node.pipeline(None),
        "timeouts: {controlPlaneComponentHealthCheck: 1500ms}\n",
    );
    let err = out.error();
    assert_eq!(
        err,
        format!(
            "error execution phase wait-control-plane: failed while waiting for the control plane to start: \
             kube-scheduler check failed at {} with status: 503",
            node.scheduler.url("https", "/livez")
        )
    );
    assert!(
        out.stdout
            .iter()
            .any(|l| l.starts_with("[control-plane-check] kube-apiserver is healthy after"))
    );
    assert!(
        out.stdout
            .iter()
            .any(|l| l.starts_with("[control-plane-check] kube-scheduler is not healthy after 1.5"))
    );
    assert!(out.stdout.contains(
        &"\t- 'crictl --runtime-endpoint unix:///var/run/containerd/containerd.sock ps -a | grep kube | grep -v pause'"
            .to_string()
    ));
    assert!(
        node.scheduler.hits() >= 3,
        "polled, not tried once: {}",
        node.scheduler.hits()
    );
}

#[test]
fn verify_mode_refuses_an_api_server_certificate_from_another_ca() {
    let node = Node::start(Replies {
        foreign_apiserver_cert: true,
        ..Default::default()
    });
    let out = node.run(
        &node.pipeline(None),
        "timeouts: {controlPlaneComponentHealthCheck: 1s}\n",
    );
    let err = out.error();
    assert!(
        err.contains(&format!(
            "kube-apiserver check failed at {}",
            node.apiserver.url("https", "/livez")
        )) && err.contains("TLS")
            && err.contains("UnknownIssuer"),
        "{err}"
    );
    // The self-signed controller-manager and scheduler pass: their grants say `tls: insecure`.
    assert!(
        out.stdout
            .iter()
            .any(|l| l.starts_with("[control-plane-check] kube-scheduler is healthy after"))
    );
    assert!(
        out.stdout
            .iter()
            .any(|l| l.starts_with("[control-plane-check] kube-controller-manager is healthy after"))
    );
}

#[test]
fn an_ungranted_endpoint_is_denied_at_once() {
    let node = Node::start(Replies::default());
    let start = Instant::now();
    let out = node.run(&node.pipeline(Some(&format!(":{}/", node.scheduler.port))), "");
    let err = out.error();
    assert!(
        err.contains(&format!("may not GET {}", node.scheduler.url("https", "/livez")))
            && err.contains("grants.health"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "no waiting on a denial"
    );
    assert_eq!(node.scheduler.hits(), 0);
}

#[test]
fn progress_is_printed_during_a_long_wait() {
    let node = Node::start(Replies {
        kubelet: Reply::Status(503, "starting".into()),
        ..Default::default()
    });
    let out = node.run(&node.pipeline(None), "timeouts: {kubeletHealthCheck: 11s}\n");
    assert!(out.result.is_err());
    let progress: Vec<&String> = out
        .stdout
        .iter()
        .filter(|l| l.contains("Still waiting"))
        .collect();
    assert_eq!(progress.len(), 1, "{:#?}", out.stdout);
    assert!(
        progress[0].starts_with("[kubelet-check] Still waiting for the kubelet after 10s: "),
        "{}",
        progress[0]
    );
    assert!(
        progress[0].ends_with("returned status code: 503"),
        "{}",
        progress[0]
    );
}

#[test]
fn dry_run_says_what_it_would_wait_for_and_connects_to_nothing() {
    let node = Node::start(Replies::default());
    let config = node.config("");
    let pipeline = node.pipeline(None);
    let mut run = Run::new(&pipeline, node.root.path());
    run.config = Some(&config);
    run.dry_run = true;
    run.no_cluster = true;
    let out = run.go();
    assert!(out.result.is_ok(), "{}", out.error());
    assert!(out.stdout.contains(&format!(
        "[dryrun] Would make sure the kubelet returns 'ok' at {}",
        node.kubelet.url("http", "/healthz")
    )));
    assert!(out.stdout.contains(&format!(
        "[dryrun] Would wait for kube-apiserver to return 'ok' at {}",
        node.apiserver.url("https", "/livez")
    )));
    for s in [&node.kubelet, &node.apiserver, &node.kcm, &node.scheduler] {
        assert_eq!(s.hits(), 0);
    }
}

#[test]
fn the_in_memory_cluster_is_reported_as_simulated_with_the_default_pipeline() {
    // The README demo: the default pipeline's grants, the reference configuration and manifests.
    let root = node("healthy");
    let manifests = root.path().join("etc/kubernetes/manifests");
    std::fs::create_dir_all(&manifests).expect("mkdir");
    for name in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        let text = manifest(name);
        std::fs::write(manifests.join(format!("{name}.yaml")), text).expect("write");
    }
    let pipeline = Pipeline::builtin_default().expect("default pipeline");
    let config = fixture("init-config.yaml");
    let mut run = Run::new(&pipeline, root.path());
    run.config = Some(&config);
    run.only = Some(("wait-control-plane".into(), None));
    run.cluster = Some(Arc::new(MemoryCluster::new()));
    let out = run.go();
    assert!(out.result.is_ok(), "{}", out.error());
    let healthy: Vec<&String> = out
        .stdout
        .iter()
        .filter(|l| l.contains("is healthy after"))
        .collect();
    assert_eq!(healthy.len(), 4, "{:#?}", out.stdout);
    for line in healthy {
        assert!(
            line.ends_with("(simulated node of the in-memory cluster: no request was sent)"),
            "{line}"
        );
    }
    assert!(out.stdout.contains(
        &"[control-plane-check] Checking kube-apiserver at https://10.200.0.2:6443/livez".to_string()
    ));
}
