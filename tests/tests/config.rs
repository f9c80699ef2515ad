//! Configuration errors: every one names the file and line, and says what to write instead.

use std::path::Path;
use wasmadm::config::kubeadm;
use wasmadm::config::pipeline::Pipeline;
use wasmadm::runtime::{Command, RunError};
use wasmadm_tests::{Run, node};

fn pipeline_error(yaml: &str) -> String {
    Pipeline::parse(yaml, Path::new("my-pipeline.yaml"))
        .expect_err("must be refused")
        .to_string()
}

const HEAD: &str = "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\n";

#[test]
fn default_pipeline_parses_and_round_trips() {
    let p = Pipeline::builtin_default().expect("default");
    assert_eq!(p.init.0[0].name.0, "preflight");
    let yaml = serde_yaml::to_string(&p).expect("yaml");
    Pipeline::parse(&yaml, Path::new("round-trip")).expect("round trip");
}

#[test]
fn unknown_field_names_file_and_line() {
    let err = pipeline_error(&format!(
        "{HEAD}init:\n  - name: preflight\n    component: builtin:preflight\n    grant: {{}}\n"
    ));
    assert!(err.starts_with("my-pipeline.yaml:6:5: "), "{err}");
    assert!(err.contains("unknown field `grant`"), "{err}");
}

#[test]
fn bad_yaml_names_file_and_line() {
    let err = pipeline_error(&format!(
        "{HEAD}init:\n  - name: preflight\n    component: [unclosed\n"
    ));
    assert!(err.starts_with("my-pipeline.yaml:"), "{err}");
    assert!(err.contains(":6:") || err.contains(":5:"), "{err}");
}

#[test]
fn unknown_builtin_is_refused_with_the_list() {
    let err = pipeline_error(&format!(
        "{HEAD}init:\n  - name: preflight\n    component: builtin:preflite\n"
    ));
    assert!(err.starts_with("my-pipeline.yaml:4:5: init[0]: "), "{err}");
    assert!(
        err.contains("unknown built-in component \"builtin:preflite\"; built-ins are: builtin:preflight"),
        "{err}"
    );
}

#[test]
fn component_file_without_digest_is_refused() {
    let err = pipeline_error(&format!(
        "{HEAD}init:\n  - name: vendor\n    component: ./vendor.wasm\n"
    ));
    assert!(
        err.contains(
            "my-pipeline.yaml:4: init phase \"vendor\": a component file needs `digest: sha256:<hex>`"
        ),
        "{err}"
    );
}

#[test]
fn env_grant_is_a_name_or_a_suffix_pattern() {
    for bad in ["\"*\"", "\"A=B\"", "\"*_PROXY*\"", "\"\""] {
        let err = pipeline_error(&format!(
            "{HEAD}init:\n  - name: p\n    component: builtin:preflight\n    grants: {{env: [{bad}]}}\n"
        ));
        assert!(
            err.contains("init phase \"p\": env grant") && err.contains("`*` and the end of names (*_proxy)"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn bad_digest_grant_and_limits_are_refused() {
    let err = pipeline_error(&format!(
        "{HEAD}init:\n  - name: v\n    component: ./v.wasm\n    digest: md5:abc\n"
    ));
    assert!(
        err.contains("is not `sha256:` followed by 64 hex digits"),
        "{err}"
    );
    let err = pipeline_error(&format!(
        "{HEAD}init:\n  - name: p\n    component: builtin:preflight\n    grants: {{files: {{read: [etc]}}}}\n"
    ));
    assert!(err.contains("\"etc\" is not an absolute path"), "{err}");
    let err = pipeline_error(&format!(
        "{HEAD}init:\n  - name: p\n    component: builtin:preflight\n    limits: {{memory: 64MB}}\n"
    ));
    assert!(err.contains("unit must be Ki, Mi or Gi"), "{err}");
    let err = pipeline_error(&format!(
        "{HEAD}init:\n  - name: p\n    component: builtin:preflight\n    limits: {{timeout: soon}}\n"
    ));
    assert!(err.contains("not a positive duration"), "{err}");
}

#[test]
fn duplicate_phase_names_are_refused() {
    let err = pipeline_error(&format!(
        "{HEAD}init:\n  - name: p\n    component: builtin:preflight\n  - name: p\n    component: builtin:preflight\n"
    ));
    assert!(err.contains("phase name \"p\" appears twice"), "{err}");
    // A sub-phase run by a plugin of its own is `group/name`; the group cannot be a phase too.
    let err = pipeline_error(&format!(
        "{HEAD}join:\n  - name: p\n    component: builtin:preflight\n  - name: p/q\n    component: builtin:preflight\n"
    ));
    assert!(err.contains("\"p/q\" is a sub-phase of \"p\""), "{err}");
    for bad in ["p/", "/q", "p/q/r", "P/q"] {
        let err = pipeline_error(&format!(
            "{HEAD}join:\n  - name: {bad}\n    component: builtin:preflight\n"
        ));
        assert!(err.contains("is invalid"), "{bad}: {err}");
    }
    let ok = format!(
        "{HEAD}join:\n  - name: control-plane-prepare/certs\n    component: builtin:certs\n  - name: \
         control-plane-prepare/kubeconfig\n    component: builtin:kubeconfig\n"
    );
    wasmadm::config::pipeline::Pipeline::parse(&ok, std::path::Path::new("p.yaml")).expect("a group");
}

#[test]
fn unknown_skip_phase_is_an_invalid_phase_name() {
    let root = node("healthy");
    let pipeline = Pipeline::builtin_default().expect("default");
    let mut run = Run::new(&pipeline, root.path());
    run.flags.skip_phases = vec!["preflght".into()];
    let out = run.go();
    let err = out.error();
    assert!(err.contains("invalid phase name \"preflght\""), "{err}");
    assert!(err.contains("preflight"), "lists the valid names: {err}");
    assert!(matches!(out.result, Err(RunError::InvalidPhaseName { .. })));
}

#[test]
fn skipping_all_of_a_phase_by_its_all_sub_phase_is_refused_with_the_fix() {
    let root = node("healthy");
    let pipeline = Pipeline::builtin_default().expect("default");
    let mut run = Run::new(&pipeline, root.path());
    run.flags.skip_phases = vec!["addon/all".into()];
    let out = run.go();
    let err = out.error();
    assert!(err.contains("invalid phase name \"addon/all\""), "{err}");
    assert!(err.contains("give `addon` to skip the whole phase"), "{err}");
    assert!(out.stdout.is_empty(), "no phase ran: {:?}", out.stdout);
}

#[test]
fn skipping_a_phase_skips_it() {
    let root = node("healthy");
    // A node that would fail preflight passes when preflight is skipped (kubeadm's --skip-phases).
    std::fs::write(root.path().join("proc/meminfo"), "MemTotal: 1 kB\n").expect("write");
    let pipeline = Pipeline::builtin_default().expect("default");
    let mut run = Run::new(&pipeline, root.path());
    // kubeconfig needs the node's address from the configuration.
    let config = wasmadm_tests::fixture("init-config.yaml");
    run.config = Some(&config);
    run.flags.skip_phases = vec!["Preflight".into()];
    let out = run.go();
    assert!(
        out.result
            .as_ref()
            .is_ok_and(|r| !r.phases_run.iter().any(|p| p == "preflight")),
        "{:?}",
        out.stderr
    );
}

#[test]
fn phase_with_unknown_name_is_refused_for_init_phase() {
    let root = node("healthy");
    let pipeline = Pipeline::builtin_default().expect("default");
    let mut run = Run::new(&pipeline, root.path());
    run.only = Some(("no-such-phase".into(), None));
    run.go().expect_error(&[
        "invalid phase name \"no-such-phase\": this pipeline's phases are: preflight, certs",
        "kubeconfig/scheduler",
        "control-plane/apiserver",
    ]);
}

fn kubeadm_error(yaml: &str) -> String {
    kubeadm::parse(yaml, Path::new("kubeadm.yaml"))
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn kubeadm_config_errors_name_file_line_and_field() {
    let err = kubeadm_error(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnett: 10.244.0.0/16\n",
    );
    assert!(err.starts_with("kubeadm.yaml:7:3: "), "{err}");
    assert!(err.contains("unknown field `podSubnett`"), "{err}");

    let err = kubeadm_error("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n");
    assert!(
        err.contains("kubeadm.yaml:1: apiVersion \"kubeadm.k8s.io/v1beta3\" is not supported"),
        "{err}"
    );

    let err = kubeadm_error("apiVersion: kubeadm.k8s.io/v1beta4\nkind: Initconfiguration\n");
    assert!(
        err.contains("kind \"Initconfiguration\" is not supported"),
        "{err}"
    );
}

#[test]
fn kubeadm_config_values_are_validated() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint: {advertiseAddress: 10.0.0.300}\n\
         ---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking: {serviceSubnet: 10.96.0.0/40}\n\
         encryptionAlgorithm: RSA-1024\n",
    )
    .expect("write");
    let err = kubeadm::resolve(Some(&file), Command::Init, &Default::default(), "n1")
        .expect_err("invalid")
        .to_string();
    assert!(
        err.contains("localAPIEndpoint.advertiseAddress: \"10.0.0.300\" is not a valid IP address"),
        "{err}"
    );
    assert!(
        err.contains("networking.serviceSubnet: \"10.96.0.0/40\" is not a valid CIDR"),
        "{err}"
    );
    assert!(
        err.contains("encryptionAlgorithm: \"RSA-1024\" is not supported; use one of RSA-2048"),
        "{err}"
    );
}

#[test]
fn reference_configs_are_accepted_with_kubeadms_defaults() {
    let file = wasmadm_tests::fixture("reference/init-config.yaml");
    let c = kubeadm::resolve(Some(&file), Command::Init, &Default::default(), "host").expect("valid");
    let i = c.init.expect("init");
    let cl = c.cluster.expect("cluster");
    assert_eq!(i.node_registration.name, "n1");
    assert_eq!(i.local_api_endpoint.bind_port, 6443);
    assert_eq!(cl.networking.service_subnet, "10.96.0.0/12");
    assert_eq!(cl.networking.dns_domain, "cluster.local");
    assert_eq!(cl.certificates_dir, "/etc/kubernetes/pki");
    assert_eq!(cl.etcd.local.expect("local etcd").data_dir, "/var/lib/etcd");
    assert_eq!(i.bootstrap_tokens[0].ttl.as_deref(), Some("24h0m0s"));
    assert_eq!(
        i.node_registration.taints.expect("taints")[0].key,
        "node-role.kubernetes.io/control-plane"
    );
}

#[test]
fn init_flags_set_their_fields() {
    let flags = kubeadm::Flags {
        init: kubeadm::InitFlags {
            apiserver_advertise_address: Some("192.0.2.10".into()),
            apiserver_bind_port: Some(8443),
            apiserver_cert_extra_sans: vec!["api.example.com".into()],
            cert_dir: Some("/srv/pki".into()),
            control_plane_endpoint: Some("api.example.com:6443".into()),
            kubernetes_version: Some("v1.35.1".into()),
            pod_network_cidr: Some("10.244.0.0/16".into()),
            service_cidr: Some("10.100.0.0/16".into()),
            service_dns_domain: Some("corp.local".into()),
            image_repository: Some("mirror.example.com/k8s".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let c = kubeadm::resolve(None, Command::Init, &flags, "n1").expect("valid");
    let (i, cl) = (c.init.expect("init"), c.cluster.expect("cluster"));
    assert_eq!(i.local_api_endpoint.advertise_address, "192.0.2.10");
    assert_eq!(i.local_api_endpoint.bind_port, 8443);
    assert_eq!(cl.api_server.cert_sans, ["api.example.com"]);
    assert_eq!(cl.certificates_dir, "/srv/pki");
    assert_eq!(cl.control_plane_endpoint, "api.example.com:6443");
    assert_eq!(cl.kubernetes_version, "v1.35.1");
    assert_eq!(cl.networking.pod_subnet, "10.244.0.0/16");
    assert_eq!(cl.networking.service_subnet, "10.100.0.0/16");
    assert_eq!(cl.networking.dns_domain, "corp.local");
    assert_eq!(cl.image_repository, "mirror.example.com/k8s");

    let bad = kubeadm::Flags {
        init: kubeadm::InitFlags {
            pod_network_cidr: Some("10.244.0.0".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = kubeadm::resolve(None, Command::Init, &bad, "n1")
        .expect_err("invalid")
        .to_string();
    assert!(
        err.contains("networking.podSubnet: \"10.244.0.0\" is not a valid CIDR"),
        "{err}"
    );
}
