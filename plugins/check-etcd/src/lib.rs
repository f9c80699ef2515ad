//! kubeadm's `check-etcd` join phase (hidden in kubeadm's help): before a control plane joins a
//! cluster with stacked etcd, every etcd member the etcd mirror Pods name answers healthy. It runs
//! after control-plane-prepare, which wrote `admin.conf` and the etcd client certificate it needs.
//! Through the `etcd` capability (the pipeline's `grants.etcd`, `health` only) and the run's
//! client for the Pods.

use kubeadm_discovery::SharedPhase;
use wasmadm_plugin_sdk::types::{KubeRule, PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, Plugin, apply, done, export_plugin, print};

struct CheckEtcd;

impl Plugin for CheckEtcd {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info("check-etcd", "Check that the etcd cluster is healthy");
        info.needs.kube = vec![
            apply::admin_binding_rule(),
            KubeRule::new(&["list"], "", &["pods"]).in_namespaces(&["kube-system"]),
        ];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let mut ctx = Context::new(&context)?;
        let outputs = match kubeadm_discovery::prepare_shared_phase(&mut ctx)? {
            SharedPhase::JoiningControlPlane(outputs) => outputs,
            SharedPhase::Worker | SharedPhase::Init => return Ok(done()),
        };
        if ctx.cluster_configuration().etcd.external.is_some() {
            print("[check-etcd] Skipping etcd check in external mode");
        } else {
            print("[check-etcd] Checking that the etcd cluster is healthy");
            let endpoints = kubeadm_etcd::cluster_endpoints(&apply::cluster()?)?;
            kubeadm_etcd::check_cluster_health(&endpoints)?;
        }
        let mut report = done();
        report.outputs = outputs;
        Ok(report)
    }
}

export_plugin!(CheckEtcd);
