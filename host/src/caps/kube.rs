//! The `kube` capability: Kubernetes API calls checked against a phase's RBAC-shaped rules
//! before they reach the backend. Mutations in dry-run are recorded in the plan and sent as
//! server-side dry-runs, so the server still validates them.

use super::plan::{Plan, PlanEntry};
use crate::cluster::{ApiError, ApiErrorCode, Cluster, Collection, Endpoint, Patch, ResourceType, resources};
use crate::grants::KubeGrant;
use crate::values::{Identity, https_authority};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// The kube capability of one phase.
pub struct KubeCap {
    phase: String,
    rules: Vec<KubeGrant>,
    /// `host:port` of the servers `kube.connect` may reach (`grants.connect`, resolved).
    servers: Vec<String>,
    /// Servers learned from a cluster-info read over TLS verified with a CA, each with that CA:
    /// where the cluster says its API server is (kubeadm's bootstrap kubeconfig points there).
    learned: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
    cluster: Option<Arc<dyn Cluster>>,
    /// The node's root on the host: `cluster-as` kubeconfig files are node paths.
    root: PathBuf,
    dry_run: bool,
    plan: Plan,
}

/// What the `client` resource of the WIT contract holds: the backend it talks to, and whose
/// credentials it uses. The rules are the phase's, checked by [`KubeCap`] on every call.
pub struct ClientHandle {
    pub cluster: Arc<dyn Cluster>,
    /// `None` for the run's own credentials; else the kubeconfig (node path) of `cluster-as`.
    pub kubeconfig: Option<String>,
    /// The identity of a `kube.connect` client.
    pub identity: Option<Identity>,
    /// The CA a `kube.connect` client verifies its server with.
    pub ca_pem: Option<Vec<u8>>,
}

/// The credentials of a `kube.connect` client.
pub enum Credential {
    Anonymous,
    /// `<id>.<secret>`.
    BootstrapToken(String),
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
        rules: Vec<KubeGrant>,
        cluster: Option<Arc<dyn Cluster>>,
        root: PathBuf,
        dry_run: bool,
        plan: Plan,
    ) -> Self {
        Self {
            phase: phase.to_string(),
            rules,
            servers: Vec::new(),
            learned: Default::default(),
            cluster,
            root,
            dry_run,
            plan,
        }
    }

    /// The servers `kube.connect` may reach, as `host:port`.
    pub fn with_servers(mut self, servers: Vec<String>) -> Self {
        self.servers = servers;
        self
    }

    fn configured_cluster(&self) -> Result<Arc<dyn Cluster>, ApiError> {
        self.cluster.clone().ok_or_else(|| {
            ApiError::new(
                ApiErrorCode::Unavailable,
                0,
                "no cluster is configured for this run (see --cluster)",
            )
        })
    }

    /// A client for the run's cluster, if the phase has any rule and a cluster is configured.
    pub fn connect(&self) -> Result<ClientHandle, ApiError> {
        if self
            .rules
            .iter()
            .all(|r| r.kubeconfig.is_some() || r.identity.is_some())
        {
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
        Ok(ClientHandle {
            cluster: self.configured_cluster()?,
            kubeconfig: None,
            identity: None,
            ca_pem: None,
        })
    }

    /// A client with the credentials of the kubeconfig file `kubeconfig` (a node path), if a rule
    /// of the phase names exactly that file.
    pub fn connect_as(&self, kubeconfig: &str) -> Result<ClientHandle, ApiError> {
        let granted = self
            .rules
            .iter()
            .filter_map(|r| r.kubeconfig.as_ref())
            .find(|k| k.as_str() == kubeconfig);
        let Some(granted) = granted else {
            return Err(ApiError::new(
                ApiErrorCode::Denied,
                0,
                format!(
                    "kube: phase {:?} may not use the credentials of {kubeconfig:?}: no rule under \
                     grants.kube in the pipeline file names `kubeconfig: {kubeconfig}`",
                    self.phase
                ),
            ));
        };
        let host_path = super::path::host_path(&self.root, granted);
        let cluster = self.configured_cluster()?.with_credentials(&host_path)?;
        Ok(ClientHandle {
            cluster,
            kubeconfig: Some(kubeconfig.to_string()),
            identity: None,
            ca_pem: None,
        })
    }

    /// A client to `server` (`https://<host>:<port>`) as `credential`, trusting `ca_pem`, if the
    /// phase's `grants.connect` lists the server and a rule names the identity. Without a CA the
    /// server is not verified, so only an anonymous client may go there: a token is sent only to
    /// a server that proved it holds a certificate of the CA the plugin verified.
    pub fn connect_to(
        &self,
        server: &str,
        ca_pem: Option<&str>,
        credential: Credential,
    ) -> Result<ClientHandle, ApiError> {
        let denied = |m: String| {
            ApiError::new(
                ApiErrorCode::Denied,
                0,
                format!("kube: phase {:?} {m}", self.phase),
            )
        };
        let authority = https_authority(server).ok_or_else(|| {
            ApiError::new(
                ApiErrorCode::Invalid,
                0,
                format!("kube.connect: server {server:?} is not of the form https://<host>:<port>"),
            )
        })?;
        let ca_bytes = ca_pem.map(|c| c.as_bytes().to_vec());
        let learned = ca_bytes.as_ref().is_some_and(|ca| {
            self.learned.lock().is_ok_and(|l| {
                l.iter()
                    .any(|(s, c)| s.eq_ignore_ascii_case(authority) && c == ca)
            })
        });
        if !learned && !self.servers.iter().any(|s| s.eq_ignore_ascii_case(authority)) {
            return Err(denied(format!(
                "may not connect to {authority}: it is not among the servers of grants.connect in the \
                 pipeline file ({})",
                if self.servers.is_empty() {
                    "none in this run".to_string()
                } else {
                    self.servers.join(", ")
                }
            )));
        }
        let (identity, bearer_token) = match credential {
            Credential::Anonymous => (Identity::Anonymous, None),
            Credential::BootstrapToken(token) => {
                kubeadm_bootstrap_token::Token::parse(&token)
                    .map_err(|e| ApiError::new(ApiErrorCode::Invalid, 0, format!("kube.connect: {e}")))?;
                (Identity::BootstrapToken, Some(token))
            }
        };
        if !self.rules.iter().any(|r| r.identity == Some(identity)) {
            return Err(denied(format!(
                "has no Kubernetes API rule for identity {identity}: add rules with `identity: \
                 {identity}` under grants.kube in the pipeline file"
            )));
        }
        if ca_pem.is_none() && identity != Identity::Anonymous {
            return Err(denied(format!(
                "may not send a {identity} to {authority} without verifying the server: pass the \
                 cluster's CA to kube.connect"
            )));
        }
        let endpoint = Endpoint {
            server: format!("https://{authority}"),
            ca_pem: ca_bytes.clone(),
            bearer_token,
        };
        Ok(ClientHandle {
            cluster: self.configured_cluster()?.connect_to(&endpoint)?,
            kubeconfig: None,
            identity: Some(identity),
            ca_pem: ca_bytes,
        })
    }

    /// After a `kube.connect` client that verifies its server read `kube-public/cluster-info`:
    /// the API server named in it becomes reachable with the same CA. kubeadm's bootstrap
    /// kubeconfig points at that server (the controlPlaneEndpoint), which may be another address
    /// than the discovery endpoint; a server certified by the CA the cluster itself named is as
    /// trusted as the endpoint it was read from.
    fn learn_from_cluster_info(&self, client: &ClientHandle, object: &Value) {
        let Some(ca) = &client.ca_pem else { return };
        let Some(kubeconfig) = object["data"]["kubeconfig"].as_str() else {
            return;
        };
        let Ok((server, named_ca)) = kubeadm_bootstrap_token::cluster_info::kubeconfig_cluster(kubeconfig)
        else {
            return;
        };
        let Some(authority) = https_authority(&server).filter(|_| named_ca == *ca) else {
            return;
        };
        if let Ok(mut learned) = self.learned.lock()
            && !learned.iter().any(|(s, c)| s == authority && c == ca)
        {
            tracing::debug!(phase = %self.phase, server = authority, "kube.connect: server named by cluster-info");
            learned.push((authority.to_string(), ca.clone()));
        }
    }

    /// The type as the API serves it: the plugin's record is checked against the host's table
    /// of built-in types ([`resources::KNOWN`]) or, for any other type, the API server's
    /// discovery (asked only when some rule could grant the call).
    fn resolve(&self, verb: &str, ty: &ResourceType) -> Result<ResourceType, ApiError> {
        resources::check_type_syntax(ty)?;
        if let Some(known) = resources::lookup(&ty.group, &ty.plural) {
            resources::check_version(ty, known)?;
            return resources::reconcile(ty, known.kind, known.namespaced);
        }
        let may = self
            .rules
            .iter()
            .any(|r| has(&r.verbs, verb) && has(&r.api_groups, &ty.group) && has(&r.resources, &ty.plural));
        if !may {
            return Err(self.denial((None, None), verb, ty, None, None));
        }
        let found = match &self.cluster {
            Some(cluster) => cluster.discover(ty)?,
            None => None,
        };
        match found {
            Some(d) => resources::reconcile(ty, &d.kind, d.namespaced),
            None => Err(ApiError::new(
                ApiErrorCode::Invalid,
                0,
                format!(
                    "kube: the cluster does not serve {} in version {:?} (the in-memory cluster \
                     serves Kubernetes' built-in types only)",
                    ty.qualified_plural(),
                    ty.version
                ),
            )),
        }
    }

    /// Checks one call: the type, namespace and name with the API server's rules, then the
    /// phase's rules. Returns the type as the API serves it and the namespace to send (`None`
    /// for cluster-scoped types and for listing all namespaces).
    pub fn authorize<'n>(
        &self,
        client: &ClientHandle,
        verb: &str,
        ty: &ResourceType,
        namespace: Option<&'n str>,
        name: Option<&str>,
    ) -> Result<(ResourceType, Option<&'n str>), ApiError> {
        let ty = self.resolve(verb, ty)?;
        let invalid = |m: String| ApiError::new(ApiErrorCode::Invalid, 0, m);
        let namespace = namespace.filter(|ns| !ns.is_empty());
        match namespace {
            Some(ns) if !ty.namespaced => {
                return Err(invalid(format!(
                    "kube: {} is cluster-scoped: call it without a namespace, not {ns:?}",
                    ty.qualified_plural()
                )));
            }
            Some(ns) => resources::check_namespace(ns)?,
            None if ty.namespaced && verb != "list" => {
                return Err(invalid(format!(
                    "kube: {} is namespaced: {verb} needs a namespace",
                    ty.qualified_plural()
                )));
            }
            None => {}
        }
        if let Some(n) = name {
            resources::check_name(&ty, n)?;
        }
        let allowed = self.rules.iter().any(|r| {
            r.kubeconfig.as_ref().map(|k| k.as_str()) == client.kubeconfig.as_deref()
                && r.identity == client.identity
                && has(&r.verbs, verb)
                && has(&r.api_groups, &ty.group)
                && has(&r.resources, &ty.plural)
                && match (ty.namespaced, namespace) {
                    (false, _) => r.namespaces.is_empty(),
                    (true, Some(ns)) => has(&r.namespaces, ns),
                    (true, None) => r.namespaces.iter().any(|n| n == "*"),
                }
                && (r.resource_names.is_empty()
                    || name.is_some_and(|n| r.resource_names.iter().any(|x| x == n)))
        });
        if allowed {
            return Ok((ty, namespace));
        }
        Err(self.denial(
            (client.kubeconfig.as_deref(), client.identity),
            verb,
            &ty,
            namespace,
            name,
        ))
    }

    /// The refusal of a call no rule grants, naming what to add.
    fn denial(
        &self,
        (kubeconfig, identity): (Option<&str>, Option<Identity>),
        verb: &str,
        ty: &ResourceType,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> ApiError {
        let identity = match (kubeconfig, identity) {
            (Some(k), _) => format!(" with the credentials of {k} (rules with `kubeconfig: {k}`)"),
            (None, Some(i)) => format!(" as kube.connect's {i} client (rules with `identity: {i}`)"),
            (None, None) => String::new(),
        };
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
            Some(ns) if ty.namespaced => what.push_str(&format!(" in namespace {ns:?}")),
            _ if ty.namespaced => what.push_str(" in all namespaces"),
            _ => {}
        }
        ApiError::new(
            ApiErrorCode::Denied,
            0,
            format!(
                "kube: phase {:?} may not {what}{identity}: no rule grants verb {verb:?} on apiGroup \
                 {group} resource {:?}; add one under grants.kube in the pipeline file if the phase \
                 needs it",
                self.phase, ty.plural
            ),
        )
    }

    /// Authorizes a mutation and, in dry-run, records it in the plan.
    fn admit<'n>(
        &self,
        client: &ClientHandle,
        verb: &str,
        at: Collection<'n>,
        name: &str,
    ) -> Result<(ResourceType, Option<&'n str>), ApiError> {
        let (ty, namespace) = self.authorize(client, verb, at.ty, at.namespace, Some(name))?;
        if self.dry_run {
            self.plan.record(PlanEntry::Api {
                phase: self.phase.clone(),
                verb: verb.to_string(),
                resource: ty.qualified_plural(),
                namespace: namespace.map(str::to_string),
                name: name.to_string(),
            });
        }
        Ok((ty, namespace))
    }

    pub fn get(&self, c: &ClientHandle, at: Collection<'_>, name: &str) -> Result<Value, ApiError> {
        let (ty, ns) = self.authorize(c, "get", at.ty, at.namespace, Some(name))?;
        let object = c.cluster.get(ty.collection(ns), name)?;
        if c.identity.is_some()
            && ty.group.is_empty()
            && ty.plural == "configmaps"
            && ns == Some("kube-public")
            && name == "cluster-info"
        {
            self.learn_from_cluster_info(c, &object);
        }
        Ok(object)
    }

    pub fn list(
        &self,
        c: &ClientHandle,
        at: Collection<'_>,
        selector: Option<&str>,
    ) -> Result<Value, ApiError> {
        let (ty, ns) = self.authorize(c, "list", at.ty, at.namespace, None)?;
        let selector = selector.filter(|s| !s.trim().is_empty());
        if let Some(s) = selector {
            resources::check_selector(s)?;
        }
        c.cluster.list(ty.collection(ns), selector)
    }

    pub fn create(&self, c: &ClientHandle, at: Collection<'_>, object: Value) -> Result<Value, ApiError> {
        let (ty, ns) = self.admit(c, "create", at, object_name(&object))?;
        c.cluster.create(ty.collection(ns), object, self.dry_run)
    }

    pub fn update(&self, c: &ClientHandle, at: Collection<'_>, object: Value) -> Result<Value, ApiError> {
        let (ty, ns) = self.admit(c, "update", at, object_name(&object))?;
        c.cluster.update(ty.collection(ns), object, self.dry_run)
    }

    pub fn patch(
        &self,
        c: &ClientHandle,
        at: Collection<'_>,
        name: &str,
        patch: Patch,
    ) -> Result<Value, ApiError> {
        let (ty, ns) = self.admit(c, "patch", at, name)?;
        c.cluster.patch(ty.collection(ns), name, patch, self.dry_run)
    }

    pub fn delete(&self, c: &ClientHandle, at: Collection<'_>, name: &str) -> Result<(), ApiError> {
        let (ty, ns) = self.admit(c, "delete", at, name)?;
        c.cluster.delete(ty.collection(ns), name, self.dry_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], resources: &[&str], namespaces: &[&str], names: &[&str]) -> KubeGrant {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        KubeGrant {
            verbs: v(verbs),
            api_groups: vec![String::new()],
            resources: v(resources),
            namespaces: v(namespaces),
            resource_names: v(names),
            kubeconfig: None,
            identity: None,
        }
    }

    /// A phase's capability with `rules` on the in-memory cluster, and its own client.
    fn cap_and_client(rules: Vec<KubeGrant>) -> (KubeCap, ClientHandle) {
        cap_and_client_on(Arc::new(crate::cluster::memory::MemoryCluster::new()), rules)
    }

    fn cap_and_client_on(cluster: Arc<dyn Cluster>, rules: Vec<KubeGrant>) -> (KubeCap, ClientHandle) {
        let cap = KubeCap::new(
            "p",
            rules,
            Some(cluster),
            PathBuf::from("/"),
            false,
            Plan::default(),
        );
        let own = cap.connect().expect("a phase with rules connects");
        (cap, own)
    }

    /// A core type as the host's table has it.
    fn ty(plural: &str) -> ResourceType {
        let k = resources::lookup("", plural).expect("a known core type");
        ResourceType::v1("", k.kind, plural, k.namespaced)
    }

    #[test]
    fn rules_are_deny_by_default_and_exact() {
        let (cap, own) = cap_and_client(vec![
            rule(&["get", "create"], &["configmaps"], &["kube-system"], &[]),
            rule(&["get"], &["nodes"], &[], &["n1"]),
        ]);
        assert!(
            cap.authorize(&own, "get", &ty("configmaps"), Some("kube-system"), Some("a"))
                .is_ok()
        );
        assert!(
            cap.authorize(&own, "delete", &ty("configmaps"), Some("kube-system"), Some("a"))
                .is_err()
        );
        assert!(
            cap.authorize(&own, "get", &ty("configmaps"), Some("default"), Some("a"))
                .is_err()
        );
        assert!(
            cap.authorize(&own, "get", &ty("secrets"), Some("kube-system"), Some("a"))
                .is_err()
        );
        assert!(
            cap.authorize(&own, "list", &ty("configmaps"), None, None)
                .is_err()
        );
        assert!(cap.authorize(&own, "get", &ty("nodes"), None, Some("n1")).is_ok());
        assert!(
            cap.authorize(&own, "get", &ty("nodes"), None, Some("n2"))
                .is_err()
        );
        let denied = cap
            .authorize(&own, "get", &ty("secrets"), Some("kube-system"), Some("s"))
            .expect_err("denied");
        assert_eq!(denied.code, ApiErrorCode::Denied);
        assert!(denied.message.contains("secrets"), "{}", denied.message);
    }

    #[test]
    fn the_scope_is_the_hosts_not_the_plugins() {
        let (cap, own) = cap_and_client(vec![rule(&["list", "get"], &["secrets", "*"], &[], &[])]);
        let mut lying = ty("secrets");
        lying.namespaced = false;
        let err = cap
            .authorize(&own, "list", &lying, None, None)
            .expect_err("refused");
        assert_eq!(err.code, ApiErrorCode::Invalid);
        assert!(
            err.message.contains("secrets is namespaced, not cluster-scoped"),
            "{}",
            err.message
        );
        // The honest record is refused too: the rule has no namespaces, so it grants cluster-scoped
        // types only.
        let err = cap
            .authorize(&own, "list", &ty("secrets"), None, None)
            .expect_err("refused");
        assert_eq!(err.code, ApiErrorCode::Denied);
        assert!(cap.authorize(&own, "get", &ty("nodes"), None, Some("n1")).is_ok());
        let err = cap
            .authorize(&own, "get", &ty("nodes"), None, Some("node1/proxy/configz"))
            .expect_err("refused");
        assert_eq!(err.code, ApiErrorCode::Invalid);
        assert!(
            cap.authorize(&own, "get", &ty("nodes"), Some("kube-system"), Some("n1"))
                .is_err()
        );
    }

    const TOKEN: &str = "abcdef.0123456789abcdef";

    #[test]
    fn connect_goes_only_to_granted_servers_with_granted_identities() {
        let mut anonymous = rule(&["get"], &["configmaps"], &["kube-public"], &["cluster-info"]);
        anonymous.identity = Some(Identity::Anonymous);
        let mut bootstrap = rule(&["get"], &["configmaps"], &["kube-system"], &["kubeadm-config"]);
        bootstrap.identity = Some(Identity::BootstrapToken);
        let own_rule = rule(&["get"], &["configmaps"], &["kube-system"], &["kubeadm-config"]);
        // A cluster to join: the in-memory cluster refuses `kube.connect` without cluster-info.
        let cluster = Arc::new(crate::cluster::memory::MemoryCluster::new());
        let cluster_info = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cluster-info", "namespace": "kube-public"},
        });
        cluster
            .create(
                ty("configmaps").collection(Some("kube-public")),
                cluster_info,
                false,
            )
            .expect("cluster-info");
        let (cap, own) = cap_and_client_on(cluster, vec![anonymous, bootstrap, own_rule]);
        let cap = cap.with_servers(vec!["10.0.0.1:6443".into()]);
        let denied = |r: Result<ClientHandle, ApiError>| {
            let e = r.err().expect("refused");
            assert_eq!(e.code, ApiErrorCode::Denied, "{}", e.message);
            e.message
        };
        let m = denied(cap.connect_to("https://10.0.0.2:6443", None, Credential::Anonymous));
        assert!(m.contains("10.0.0.2:6443") && m.contains("grants.connect"), "{m}");
        // A token never goes to a server that was not verified.
        let m = denied(cap.connect_to(
            "https://10.0.0.1:6443",
            None,
            Credential::BootstrapToken(TOKEN.into()),
        ));
        assert!(m.contains("without verifying the server"), "{m}");
        let bad = cap
            .connect_to("http://10.0.0.1:6443", None, Credential::Anonymous)
            .err()
            .expect("not https");
        assert_eq!(bad.code, ApiErrorCode::Invalid);
        let bad = cap
            .connect_to(
                "https://10.0.0.1:6443",
                Some("ca"),
                Credential::BootstrapToken("x\r\nHost: y".into()),
            )
            .err()
            .expect("not a token");
        assert_eq!(bad.code, ApiErrorCode::Invalid);

        let anon = cap
            .connect_to("https://10.0.0.1:6443/", None, Credential::Anonymous)
            .expect("anonymous, unverified");
        let boot = cap
            .connect_to(
                "https://10.0.0.1:6443",
                Some("ca"),
                Credential::BootstrapToken(TOKEN.into()),
            )
            .expect("bootstrap token, verified");
        let cm = ty("configmaps");
        // Each client has its identity's rules, and only those.
        assert!(
            cap.authorize(&anon, "get", &cm, Some("kube-public"), Some("cluster-info"))
                .is_ok()
        );
        let m = cap
            .authorize(&anon, "get", &cm, Some("kube-system"), Some("kubeadm-config"))
            .expect_err("not anonymous")
            .message;
        assert!(m.contains("identity: anonymous"), "{m}");
        assert!(
            cap.authorize(&boot, "get", &cm, Some("kube-system"), Some("kubeadm-config"))
                .is_ok()
        );
        assert!(
            cap.authorize(&boot, "get", &cm, Some("kube-public"), Some("cluster-info"))
                .is_err()
        );
        assert!(
            cap.authorize(&own, "get", &cm, Some("kube-public"), Some("cluster-info"))
                .is_err()
        );
        assert!(
            cap.authorize(&own, "get", &cm, Some("kube-system"), Some("kubeadm-config"))
                .is_ok()
        );
    }

    #[test]
    fn an_in_memory_cluster_without_cluster_info_has_nothing_to_join() {
        let mut anonymous = rule(&["get"], &["configmaps"], &["kube-public"], &["cluster-info"]);
        anonymous.identity = Some(Identity::Anonymous);
        let own_rule = rule(&["get"], &["configmaps"], &["kube-system"], &["kubeadm-config"]);
        let (cap, _) = cap_and_client(vec![anonymous, own_rule]);
        let cap = cap.with_servers(vec!["10.0.0.1:6443".into()]);
        let e = cap
            .connect_to("https://10.0.0.1:6443", None, Credential::Anonymous)
            .err()
            .expect("nothing to join");
        assert_eq!(e.code, ApiErrorCode::Unavailable, "{}", e.message);
        assert!(
            e.message.contains("holds no kube-public/cluster-info")
                && e.message.contains("--cluster kubeconfig"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_server_cluster_info_names_is_reachable_with_its_ca_only() {
        let mut anonymous = rule(&["get"], &["configmaps"], &["kube-public"], &["cluster-info"]);
        anonymous.identity = Some(Identity::Anonymous);
        let mut bootstrap = rule(&["get"], &["nodes"], &[], &[]);
        bootstrap.identity = Some(Identity::BootstrapToken);
        let (cap, own) = cap_and_client(vec![
            anonymous,
            bootstrap,
            rule(&["create"], &["configmaps"], &["*"], &[]),
        ]);
        let cap = cap.with_servers(vec!["10.0.0.1:6443".into()]);
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let kubeconfig =
            kubeadm_bootstrap_token::cluster_info::kubeconfig(ca.as_bytes(), "https://cp.example:6443");
        cap.create(
            &own,
            ty("configmaps").collection(Some("kube-public")),
            kubeadm_bootstrap_token::cluster_info::config_map(&kubeconfig),
        )
        .expect("cluster-info");
        let token = || Credential::BootstrapToken(TOKEN.into());
        let to_cp = |ca: Option<&str>| cap.connect_to("https://cp.example:6443", ca, token());
        assert!(to_cp(Some(ca)).is_err(), "not learned yet");
        // Read without verifying the server: nothing is learned.
        let insecure = cap
            .connect_to("https://10.0.0.1:6443", None, Credential::Anonymous)
            .expect("anonymous");
        cap.get(
            &insecure,
            ty("configmaps").collection(Some("kube-public")),
            "cluster-info",
        )
        .expect("read");
        assert!(to_cp(Some(ca)).is_err(), "learned from an unverified read");
        let verified = cap
            .connect_to("https://10.0.0.1:6443", Some(ca), Credential::Anonymous)
            .expect("anonymous, verified");
        cap.get(
            &verified,
            ty("configmaps").collection(Some("kube-public")),
            "cluster-info",
        )
        .expect("read");
        assert!(
            to_cp(Some(ca)).is_ok(),
            "the server cluster-info names, with its CA"
        );
        let other = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";
        let e = to_cp(Some(other)).err().expect("another CA");
        assert_eq!(e.code, ApiErrorCode::Denied);
        assert!(
            cap.connect_to("https://cp.example:6444", Some(ca), token())
                .is_err()
        );
    }

    #[test]
    fn connect_needs_a_rule_for_the_identity() {
        let mut anonymous = rule(&["get"], &["configmaps"], &["kube-public"], &["cluster-info"]);
        anonymous.identity = Some(Identity::Anonymous);
        let (cap, _) = cap_and_client(vec![anonymous, rule(&["get"], &["nodes"], &[], &[])]);
        let cap = cap.with_servers(vec!["10.0.0.1:6443".into()]);
        let e = cap
            .connect_to(
                "https://10.0.0.1:6443",
                Some("ca"),
                Credential::BootstrapToken(TOKEN.into()),
            )
            .err()
            .expect("no rule for the token");
        assert_eq!(e.code, ApiErrorCode::Denied);
        assert!(e.message.contains("identity: bootstrap-token"), "{}", e.message);
    }

    #[test]
    fn rules_naming_a_kubeconfig_apply_only_to_its_client() {
        let super_admin = "/etc/kubernetes/super-admin.conf";
        let crb = ResourceType::v1(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
        );
        let mut bind = rule(
            &["create"],
            &["clusterrolebindings"],
            &[],
            &["kubeadm:cluster-admins"],
        );
        bind.api_groups = vec![crb.group.clone()];
        bind.kubeconfig = Some(crate::values::NodePath::parse(super_admin).expect("path"));
        let cap = KubeCap::new(
            "p",
            vec![bind, rule(&["get"], &["configmaps"], &["kube-system"], &[])],
            Some(Arc::new(crate::cluster::memory::MemoryCluster::new())),
            PathBuf::from("/"),
            false,
            Plan::default(),
        );
        let own = cap.connect().expect("own client");
        let elevated = cap.connect_as(super_admin).expect("granted kubeconfig");
        let cm = ty("configmaps");
        let name = Some("kubeadm:cluster-admins");
        assert!(cap.authorize(&elevated, "create", &crb, None, name).is_ok());
        assert!(cap.authorize(&own, "create", &crb, None, name).is_err());
        let denied = cap
            .authorize(&elevated, "get", &cm, Some("kube-system"), Some("x"))
            .expect_err("the run's rules are not the elevated client's");
        assert!(denied.message.contains(super_admin), "{}", denied.message);
        assert!(
            cap.authorize(&own, "get", &cm, Some("kube-system"), Some("x"))
                .is_ok()
        );
        let other = cap
            .connect_as("/etc/kubernetes/admin.conf")
            .err()
            .expect("not granted");
        assert_eq!(other.code, ApiErrorCode::Denied);
        assert!(
            other.message.contains("kubeconfig: /etc/kubernetes/admin.conf"),
            "{}",
            other.message
        );
    }
}
