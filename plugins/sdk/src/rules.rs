//! Builders for the capability rules a plugin's `describe()` asks for.

use crate::types::KubeRule;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl KubeRule {
    /// `verbs` on `resources` of API group `group` (`""`: the core group), in every namespace and
    /// on every name until narrowed with [`in_namespaces`](Self::in_namespaces) and
    /// [`named`](Self::named).
    ///
    /// ```
    /// use wasmadm_plugin_sdk::types::KubeRule;
    /// let rule = KubeRule::new(&["get", "create", "update"], "", &["configmaps"])
    ///     .in_namespaces(&["kube-system"])
    ///     .named(&["kubeadm-config"]);
    /// assert_eq!(rule.api_groups, [""]);
    /// assert_eq!(rule.resource_names, ["kubeadm-config"]);
    /// ```
    pub fn new(verbs: &[&str], group: &str, resources: &[&str]) -> Self {
        Self {
            verbs: strings(verbs),
            api_groups: vec![group.to_string()],
            resources: strings(resources),
            namespaces: Vec::new(),
            resource_names: Vec::new(),
        }
    }

    /// The rule limited to `namespaces` (none: every namespace, or a cluster-scoped resource).
    ///
    /// ```
    /// use wasmadm_plugin_sdk::types::KubeRule;
    /// let rule = KubeRule::new(&["create"], "", &["secrets"]).in_namespaces(&["kube-system"]);
    /// assert_eq!(rule.namespaces, ["kube-system"]);
    /// ```
    pub fn in_namespaces(mut self, namespaces: &[&str]) -> Self {
        self.namespaces = strings(namespaces);
        self
    }

    /// The rule limited to objects of these names (none: any name).
    ///
    /// ```
    /// use wasmadm_plugin_sdk::types::KubeRule;
    /// let rule = KubeRule::new(&["get"], "rbac.authorization.k8s.io", &["clusterroles"])
    ///     .named(&["kubeadm:get-nodes"]);
    /// assert_eq!(rule.resource_names, ["kubeadm:get-nodes"]);
    /// ```
    pub fn named(mut self, names: &[&str]) -> Self {
        self.resource_names = strings(names);
        self
    }
}
