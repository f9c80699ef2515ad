//! The `upload-config` phase against the in-memory cluster, compared with the objects real
//! kubeadm v1.36 created (`tests/fixtures/reference/api`): the `kubeadm-config` and
//! `kubelet-config` ConfigMaps (data byte for byte, and the hash annotation), their Roles and
//! RoleBindings; updates of stale objects; a second run changes nothing.

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use wasmadm::cluster::memory::MemoryCluster;
use wasmadm::cluster::{Cluster, ResourceType};
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::{Outcome, Run, fixture, node, reference_object, ty, yaml_fixture};

const RBAC: &str = "rbac.authorization.k8s.io";

/// (reference file, type, name) of every object the phase creates: per ConfigMap, the Role
/// that may read it and its RoleBinding.
fn objects() -> Vec<(String, ResourceType, &'static str)> {
    let mut list = Vec::new();
    for (cm, role) in [
        ("kubeadm-config", "kubeadm:nodes-kubeadm-config"),
        ("kubelet-config", "kubeadm:kubelet-config"),
    ] {
        let file = role.replace(':', "_");
        list.push((
            format!("kube-system.cm.{cm}.yaml"),
            ty("", "ConfigMap", "configmaps"),
            cm,
        ));
        list.push((
            format!("kube-system.Role.{file}.yaml"),
            ty(RBAC, "Role", "roles"),
            role,
        ));
        list.push((
            format!("kube-system.RoleBinding.{file}.yaml"),
            ty(RBAC, "RoleBinding", "rolebindings"),
            role,
        ));
    }
    list
}

fn upload(root: &Path, cluster: &Arc<MemoryCluster>, config: Option<&Path>, sub: Option<&str>) -> Outcome {
    let pipeline = Pipeline::builtin_default().expect("pipeline");
    let reference = fixture("init-config.yaml");
    let mut run = Run::new(&pipeline, root);
    run.config = Some(config.unwrap_or(&reference));
    run.only = Some(("upload-config".into(), Some(sub.unwrap_or("all").into())));
    run.cluster = Some(cluster.clone());
    let out = run.go();
    out.expect_ok();
    out
}

fn get(cluster: &MemoryCluster, ty: &ResourceType, name: &str) -> Value {
    cluster
        .get(ty.collection(Some("kube-system")), name)
        .expect("object exists")
}

/// The fields of `object` that do not vary run to run (no uid, resourceVersion, timestamps).
fn stable(object: &Value) -> Value {
    let meta = &object["metadata"];
    json!({
        "apiVersion": object["apiVersion"],
        "kind": object["kind"],
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": meta["labels"],
            "annotations": meta["annotations"],
        },
        "data": object["data"],
        "rules": object["rules"],
        "roleRef": object["roleRef"],
        "subjects": object["subjects"],
    })
}

#[test]
fn objects_match_real_kubeadm() {
    let root = node("healthy");
    let cluster = Arc::new(MemoryCluster::new());
    let out = upload(root.path(), &cluster, None, None);
    assert_eq!(
        out.stdout,
        [
            "[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace",
            "[kubelet] Creating a ConfigMap \"kubelet-config\" in namespace kube-system with the configuration for the kubelets in the cluster",
        ]
    );
    for (file, ty, name) in objects() {
        let ours = get(&cluster, &ty, name);
        assert_eq!(stable(&ours), stable(&reference_object(&file)), "{file}");
    }
}

#[test]
fn second_run_changes_nothing_and_stale_objects_are_updated() {
    let root = node("healthy");
    let cluster = Arc::new(MemoryCluster::new());
    let cm = ty("", "ConfigMap", "configmaps");
    // A stale kubeadm-config (from an older version) with a key kubeadm does not own.
    cluster
        .create(
            cm.collection(Some("kube-system")),
            json!({"metadata": {"name": "kubeadm-config"}, "data": {"ClusterConfiguration": "old", "other": "kept"}}),
            false,
        )
        .expect("stale");
    upload(root.path(), &cluster, None, None);
    let updated = get(&cluster, &cm, "kubeadm-config");
    assert_eq!(updated["data"]["other"], "kept");
    assert_eq!(
        updated["data"]["ClusterConfiguration"],
        reference_object("kube-system.cm.kubeadm-config.yaml")["data"]["ClusterConfiguration"]
    );

    let versions = |c: &MemoryCluster| -> Vec<Value> {
        objects()
            .iter()
            .map(|(_, ty, name)| get(c, ty, name)["metadata"]["resourceVersion"].clone())
            .collect()
    };
    let before = versions(&cluster);
    upload(root.path(), &cluster, None, None);
    assert_eq!(versions(&cluster), before, "the second run wrote objects");
}

#[test]
fn kubelet_configuration_of_the_config_file_is_uploaded_unsigned() {
    let root = node("healthy");
    let config = root.path().join("config.yaml");
    let base = std::fs::read_to_string(fixture("init-config.yaml")).expect("fixture");
    std::fs::write(
        &config,
        format!(
            "{base}networking: {{serviceSubnet: 10.100.0.0/16}}\n---\napiVersion: kubelet.config.k8s.io/v1beta1\n\
             kind: KubeletConfiguration\nmaxPods: 50\n"
        ),
    )
    .expect("config");
    let cluster = Arc::new(MemoryCluster::new());
    let out = upload(root.path(), &cluster, Some(&config), Some("kubelet"));
    assert_eq!(
        out.stdout.len(),
        1,
        "only the kubelet sub-phase ran: {:?}",
        out.stdout
    );
    assert!(
        cluster
            .get(
                ty("", "ConfigMap", "configmaps").collection(Some("kube-system")),
                "kubeadm-config"
            )
            .is_err()
    );
    let cm = get(&cluster, &ty("", "ConfigMap", "configmaps"), "kubelet-config");
    let data = cm["data"]["kubelet"].as_str().expect("kubelet key");
    assert!(data.contains("maxPods: 50\n"), "{data}");
    assert!(data.contains("clusterDNS:\n- 10.100.0.10\n"), "{data}");
    // kubeadm signs only a configuration it generated itself (the reference run's is signed).
    assert_eq!(cm["metadata"]["annotations"], Value::Null, "{cm}");
    assert!(
        reference_object("kube-system.cm.kubelet-config.yaml")["metadata"]["annotations"]
            ["kubeadm.kubernetes.io/component-config.hash"]
            .is_string()
    );
}

/// The second configuration (`reference/extra-args`): its user KubeletConfiguration is uploaded
/// unsigned, and a skipped addon phase is a disabled addon in `kubeadm-config` (`skipPhases:
/// [addon/kube-proxy]` in the file; `--skip-phases addon/coredns` replacing it), as kubeadm's
/// `init --dry-run` printed them.
#[test]
fn extra_args_config_maps_match_real_kubeadm() {
    let config = fixture("reference/extra-args/init-config.yaml");
    let cm = ty("", "ConfigMap", "configmaps");
    for (flag, dir, names) in [
        (None, "api", ["kubeadm-config", "kubelet-config"].as_slice()),
        (
            Some("addon/coredns"),
            "api-skip-coredns",
            ["kubeadm-config"].as_slice(),
        ),
    ] {
        let root = node("healthy");
        let cluster = Arc::new(MemoryCluster::new());
        let pipeline = Pipeline::builtin_default().expect("pipeline");
        let mut run = Run::new(&pipeline, root.path());
        run.config = Some(&config);
        run.only = Some(("upload-config".into(), Some("all".into())));
        run.flags.skip_phases = flag.into_iter().map(String::from).collect();
        run.cluster = Some(cluster.clone());
        run.go().expect_ok();
        for name in names {
            let file = format!("reference/extra-args/{dir}/kube-system.cm.{name}.yaml");
            assert_eq!(
                stable(&get(&cluster, &cm, name)),
                stable(&yaml_fixture(&file)),
                "{file}"
            );
        }
    }
}

#[test]
fn dry_run_records_the_api_calls_and_creates_nothing() {
    let root = node("healthy");
    let pipeline = Pipeline::builtin_default().expect("pipeline");
    let config = fixture("init-config.yaml");
    let cluster = Arc::new(MemoryCluster::new());
    let mut run = Run::new(&pipeline, root.path());
    run.config = Some(&config);
    run.only = Some(("upload-config".into(), Some("all".into())));
    run.cluster = Some(cluster.clone());
    run.dry_run = true;
    let out = run.go();
    out.expect_ok();
    assert!(cluster.objects().is_empty(), "{:?}", cluster.objects());
    for (_, ty, name) in objects() {
        let line = format!(
            "[dryrun] Would perform action CREATE on resource {:?} in namespace \"kube-system\" named {name:?}",
            ty.qualified_plural()
        );
        assert!(out.stdout.contains(&line), "{line} not in {:#?}", out.stdout);
    }
}
