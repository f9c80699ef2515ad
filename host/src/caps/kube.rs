//! The `kube` capability: Kubernetes API calls checked against a phase's RBAC-shaped rules
//! before they reach the backend. Mutations in dry-run are recorded in the plan and sent as
//! server-side dry-runs, so the server still validates them.

use super::plan::{Plan, PlanEntry};
use crate::cluster::{ApiError, ApiErrorCode, Cluster, PatchKind, ResourceType};
use crate::config::pipeline::KubeRule;
use serde_json::Value;
use std::sync::Arc;

/// The kube capability of one phase.
pub struct KubeCap {
    phase: String,
    rules: Vec<KubeRule>,
    cluster: Option<Arc<dyn Cluster>>,
    dry_run: bool,
    plan: Plan,
}

/// What the `client` resource of the WIT contract holds: the backend it talks to. The rules are
/// the phase's, checked by [`KubeCap`] on every call.
pub struct ClientHandle {
    pub cluster: Arc<dyn Cluster>,
}

fn object_name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn has(list: &[String], item: &str) -> bool {
    list.iter().any(|x| x == "*" || x == item)
}

impl KubeCap {
    pub fn new(
        phase: &str,
        rules: Vec<KubeRule>,
        cluster: Option<Arc<dyn Cluster>>,
        dry_run: bool,
        plan: Plan,
    ) -> Self {
        Self {
            phase: phase.to_string(),
            rules,
            cluster,
            dry_run,
            plan,
        }
    }

    /// A client for the run's cluster, if the phase has any rule and a cluster is configured.
    pub fn connect(&self) -> Result<ClientHandle, ApiError> {
        if self.rules.is_empty() {
            return Err(ApiError::new(
                ApiErrorCode::Denied,
                0,
                format!(
                    "kube: phase {:?} has no Kubernetes API grant; add rules under grants.kube in the \
                     pipeline file if it should talk to the cluster",
                    self.phase
                ),
            ));
        }
        let cluster = self.cluster.clone().ok_or_else(|| {
            ApiError::new(
                ApiErrorCode::Unavailable,
                0,
                "no cluster is configured for this run (see --cluster)",
            )
        })?;
        Ok(ClientHandle { cluster })
    }

    /// Checks one call against the rules.
    pub fn authorize(
        &self,
        verb: &str,
        ty: &ResourceType,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        let allowed = self.rules.iter().any(|r| {
            has(&r.verbs, verb)
                && has(&r.api_groups, &ty.group)
                && has(&r.resources, &ty.plural)
                && match (ty.namespaced, namespace) {
                    (false, _) => r.namespaces.is_empty(),
                    (true, Some(ns)) if !ns.is_empty() => has(&r.namespaces, ns),
                    (true, _) => r.namespaces.iter().any(|n| n == "*"),
                }
                && (r.resource_names.is_empty()
                    || name.is_some_and(|n| r.resource_names.iter().any(|x| x == n)))
        });
        if allowed {
            return Ok(());
        }
        let group = if ty.group.is_empty() {
            "\"\" (core)".to_string()
        } else {
            format!("{:?}", ty.group)
        };
        let mut what = format!("{verb} {}", ty.plural);
        if let Some(n) = name {
            what.push_str(&format!(" {n:?}"));
        }
        match namespace {
            Some(ns) if ty.namespaced && !ns.is_empty() => what.push_str(&format!(" in namespace {ns:?}")),
            _ if ty.namespaced => what.push_str(" in all namespaces"),
            _ => {}
        }
        Err(ApiError::new(
            ApiErrorCode::Denied,
            0,
            format!(
                "kube: phase {:?} may not {what}: no rule grants verb {verb:?} on apiGroup {group} \
                 resource {:?}; add one under grants.kube in the pipeline file if the phase needs it",
                self.phase, ty.plural
            ),
        ))
    }

    /// Authorizes a mutation and, in dry-run, records it in the plan.
    fn admit(
        &self,
        verb: &str,
        ty: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        self.authorize(verb, ty, namespace, Some(name))?;
        if self.dry_run {
            self.plan.record(PlanEntry::Api {
                phase: self.phase.clone(),
                verb: verb.to_string(),
                resource: ty.qualified_plural(),
                namespace: namespace.map(str::to_string),
                name: name.to_string(),
            });
        }
        Ok(())
    }

    pub fn get(
        &self,
        c: &ClientHandle,
        ty: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.authorize("get", ty, ns, Some(name))?;
        c.cluster.get(ty, ns, name)
    }

    pub fn list(
        &self,
        c: &ClientHandle,
        ty: &ResourceType,
        ns: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.authorize("list", ty, ns, None)?;
        c.cluster.list(ty, ns, selector)
    }

    pub fn create(
        &self,
        c: &ClientHandle,
        ty: &ResourceType,
        ns: Option<&str>,
        object: Value,
    ) -> Result<Value, ApiError> {
        self.admit("create", ty, ns, object_name(&object))?;
        c.cluster.create(ty, ns, object, self.dry_run)
    }

    pub fn update(
        &self,
        c: &ClientHandle,
        ty: &ResourceType,
        ns: Option<&str>,
        object: Value,
    ) -> Result<Value, ApiError> {
        self.admit("update", ty, ns, object_name(&object))?;
        c.cluster.update(ty, ns, object, self.dry_run)
    }

    pub fn patch(
        &self,
        c: &ClientHandle,
        ty: &ResourceType,
        ns: Option<&str>,
        name: &str,
        kind: PatchKind,
        patch: Value,
    ) -> Result<Value, ApiError> {
        self.admit("patch", ty, ns, name)?;
        c.cluster.patch(ty, ns, name, kind, patch, self.dry_run)
    }

    pub fn delete(
        &self,
        c: &ClientHandle,
        ty: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        self.admit("delete", ty, ns, name)?;
        c.cluster.delete(ty, ns, name, self.dry_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], resources: &[&str], namespaces: &[&str], names: &[&str]) -> KubeRule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        KubeRule {
            verbs: v(verbs),
            api_groups: vec![String::new()],
            resources: v(resources),
            namespaces: v(namespaces),
            resource_names: v(names),
        }
    }

    fn ty(plural: &str, namespaced: bool) -> ResourceType {
        ResourceType {
            group: String::new(),
            version: "v1".into(),
            kind: "X".into(),
            plural: plural.into(),
            namespaced,
        }
    }

    #[test]
    fn rules_are_deny_by_default_and_exact() {
        let cap = KubeCap::new(
            "p",
            vec![
                rule(&["get", "create"], &["configmaps"], &["kube-system"], &[]),
                rule(&["get"], &["nodes"], &[], &["n1"]),
            ],
            None,
            false,
            Plan::default(),
        );
        assert!(
            cap.authorize("get", &ty("configmaps", true), Some("kube-system"), Some("a"))
                .is_ok()
        );
        assert!(
            cap.authorize("delete", &ty("configmaps", true), Some("kube-system"), Some("a"))
                .is_err()
        );
        assert!(
            cap.authorize("get", &ty("configmaps", true), Some("default"), Some("a"))
                .is_err()
        );
        assert!(
            cap.authorize("get", &ty("secrets", true), Some("kube-system"), Some("a"))
                .is_err()
        );
        assert!(
            cap.authorize("list", &ty("configmaps", true), None, None)
                .is_err()
        );
        assert!(
            cap.authorize("get", &ty("nodes", false), None, Some("n1"))
                .is_ok()
        );
        assert!(
            cap.authorize("get", &ty("nodes", false), None, Some("n2"))
                .is_err()
        );
        let denied = cap
            .authorize("get", &ty("secrets", true), Some("kube-system"), Some("s"))
            .expect_err("denied");
        assert_eq!(denied.code, ApiErrorCode::Denied);
        assert!(denied.message.contains("secrets"), "{}", denied.message);
    }
}
