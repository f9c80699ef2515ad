//! The built-in phases against the default pipeline: each is granted exactly what its
//! `describe()` asks for, wherever the default pipeline runs it. The one check that adding a
//! built-in phase (docs/plugins.md) keeps its two statements of its needs in step.

use std::sync::Arc;
use wasmadm::config::pipeline::{ComponentRef, Grants, Pipeline};
use wasmadm_tests::{node, permissions, runtime};

/// Phases the default pipeline grants less than the plugin asks for, with the reason: there the
/// phase does less, so the grants must be a subset of the request, never more.
const NARROWED: &[(&str, &str, &str)] = &[
    (
        "reset",
        "preflight",
        "reset runs only the privilege check, which reads /proc/self/status",
    ),
    (
        "init",
        "kubelet-start",
        "init writes no bootstrap kubeconfig or CA for the kubelet: those are join's",
    ),
    (
        "init",
        "etcd",
        "init starts a new etcd cluster: it lists no etcd Pods to find the members (etcd-join does)",
    ),
];

/// Pipeline entries whose name is not their plugin's, with the reason.
const RENAMED: &[(&str, &str, &str, &str)] = &[(
    "join",
    "etcd-join",
    "etcd",
    "kubeadm's etcd-join phase is the etcd plugin on a joining control plane",
)];

#[test]
fn every_builtin_is_granted_what_it_asks_for_in_the_default_pipeline() {
    let pipeline = Pipeline::builtin_default().expect("default pipeline");
    let root = node("healthy");
    let dir = Arc::new(
        cap_std::fs::Dir::open_ambient_dir(root.path(), cap_std::ambient_authority()).expect("root"),
    );
    for builtin in wasmadm::builtin::all() {
        let uses: Vec<_> = pipeline
            .commands()
            .flat_map(|(command, phases)| phases.0.iter().map(move |spec| (command, spec)))
            .filter(|(_, spec)| matches!(&spec.component, ComponentRef::Builtin(n) if n == builtin.name))
            .collect();
        assert!(
            !uses.is_empty(),
            "built-in {:?} is not in the default pipeline: add its phase with its grants to \
             host/src/config/default-pipeline.yaml",
            builtin.name
        );
        for (command, spec) in uses {
            let planned = wasmadm::invocation::describe(runtime(), dir.clone(), spec).expect("describe");
            // `group/name` is a sub-phase run by its own plugin: the plugin is `name`.
            let plugin_name = RENAMED
                .iter()
                .find(|(c, p, _, _)| *c == command && *p == spec.name.0)
                .map_or_else(|| spec.name.0.rsplit('/').next().unwrap_or_default(), |r| r.2);
            assert_eq!(planned.info.name, plugin_name, "{command} phase {}", spec.name);
            let asked = permissions(&Grants::from_request(&planned.info.needs).expect("request"));
            let granted = permissions(&spec.grants.requestable());
            let where_ = format!("{command} phase {} (builtin:{})", spec.name, builtin.name);
            if NARROWED
                .iter()
                .any(|(c, p, _)| *c == command && *p == spec.name.0)
            {
                let extra: Vec<_> = granted.difference(&asked).collect();
                assert!(extra.is_empty(), "{where_}: granted but not asked for: {extra:?}");
                assert_ne!(
                    granted, asked,
                    "{where_}: no longer narrowed, drop it from NARROWED"
                );
            } else {
                assert_eq!(
                    granted, asked,
                    "{where_}: the default pipeline's grants (left) differ from what describe() asks \
                     for (right); make them equal"
                );
            }
        }
    }
}
