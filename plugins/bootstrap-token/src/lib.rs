//! The `bootstrap-token` phase of `init`: the bootstrap token Secrets of `bootstrapTokens`
//! (one generated when the configuration has none, as kubeadm does), the RBAC that lets nodes
//! bootstrap with them, and the `kube-public/cluster-info` ConfigMap join discovery reads, with
//! the Role that lets anonymous clients read it. Console lines are kubeadm's.
//!
//! Every object is created or updated only when it differs, so a second run changes nothing. A
//! token Secret whose expiry came from a TTL keeps its stored expiration while it is still valid:
//! a re-run does not silently extend a credential's lifetime.
//!
//! As in kubeadm, the `jws-kubeconfig-<id>` signatures in cluster-info are left to the
//! controller-manager's bootstrap signer (the in-memory cluster simulates it). The setting
//! `signClusterInfo: true` makes the phase add them itself, with the exact value the signer would
//! write, for clusters that run without that controller.

pub mod objects;

use kubeadm_bootstrap_token::{SECRET_NAMESPACE, TokenSpec, clock, cluster_info};
use objects::{CLUSTER_INFO_ROLE, CLUSTER_ROLE_BINDINGS, GET_NODES, RBAC_GROUP};
use serde::Deserialize;
use wasmadm_plugin_sdk::apply::{Applied, Update, context, create_or_update};
use wasmadm_plugin_sdk::types::{KubeRule, PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, Findings, Plugin, debug, export_plugin, fs, kube, print};

/// Reads an object; `None` when it does not exist.
fn get(
    client: &kube::Client,
    ty: &kube::ResourceType,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<serde_json::Value>, PhaseError> {
    wasmadm_plugin_sdk::apply::get(client, ty, namespace, name)
        .map_err(context(&format!("unable to get {} {name:?}", ty.kind)))
}

/// The kubeconfig kubeadm takes the API server URL and the CA from.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// The plugin's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Settings {
    /// Sign cluster-info for the tokens with the `signing` usage (default false: the
    /// controller-manager does).
    #[serde(default)]
    sign_cluster_info: Option<bool>,
}

const SETTINGS_EXAMPLE: &str = "\
# Add the jws-kubeconfig-<token id> signatures to cluster-info for the tokens this phase writes,
# exactly as the controller-manager's bootstrap signer would (default false: the signer does it,
# and `join` waits for it).
signClusterInfo: false
";

/// Exactly the API calls the phase makes: read, create and update, on its own objects only
/// (token Secrets are named by their random IDs, so they cannot be listed by name).
fn kube_rules() -> Vec<KubeRule> {
    const RW: &[&str] = &["get", "create", "update"];
    vec![
        KubeRule::new(RW, "", &["secrets"]).in_namespaces(&[SECRET_NAMESPACE]),
        KubeRule::new(RW, "", &["configmaps"])
            .in_namespaces(&[cluster_info::NAMESPACE])
            .named(&[cluster_info::NAME]),
        KubeRule::new(RW, RBAC_GROUP, &["roles", "rolebindings"])
            .in_namespaces(&[cluster_info::NAMESPACE])
            .named(&[CLUSTER_INFO_ROLE]),
        KubeRule::new(RW, RBAC_GROUP, &["clusterroles"]).named(&[GET_NODES]),
        KubeRule::new(RW, RBAC_GROUP, &["clusterrolebindings"]).named(&CLUSTER_ROLE_BINDINGS),
    ]
}

fn invalid(e: kubeadm_bootstrap_token::Error, index: usize) -> PhaseError {
    PhaseError::InvalidConfig(format!("bootstrapTokens[{index}]: {e}"))
}

/// The configured tokens, with their expiry and whether it came from a TTL.
fn tokens(ctx: &Context<'_>, now: i64) -> Result<Vec<(TokenSpec, bool)>, PhaseError> {
    let init = ctx.config.init.clone().ok_or_else(|| {
        PhaseError::InvalidConfig(
            "the bootstrap-token phase needs an InitConfiguration (it runs in `init`)".into(),
        )
    })?;
    let mut configured = init.bootstrap_tokens;
    if configured.is_empty() {
        configured.push(kubeadm_config_default());
    }
    configured
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let spec = TokenSpec::from_config(c, now).map_err(|e| invalid(e, i))?;
            Ok((spec, c.expires.is_none()))
        })
        .collect()
}

/// kubeadm's defaulted `bootstrapTokens[]` entry (the host applies these defaults; this covers
/// a host that passed an empty list).
fn kubeadm_config_default() -> wasmadm_plugin_sdk::config::BootstrapToken {
    let mut init = wasmadm_plugin_sdk::config::InitConfiguration::default();
    wasmadm_plugin_sdk::config::defaults::init_configuration(&mut init, "");
    init.bootstrap_tokens.into_iter().next().unwrap_or_default()
}

/// Writes one token Secret. A TTL-based expiry already stored and still in the future is kept.
fn apply_token(
    client: &kube::Client,
    spec: &TokenSpec,
    ttl_based: bool,
    now: i64,
) -> Result<Applied, PhaseError> {
    let mut spec = spec.clone();
    if ttl_based
        && spec.expires.is_some()
        && let Some(stored) = get(
            client,
            &objects::secrets(),
            Some(SECRET_NAMESPACE),
            &spec.secret_name(),
        )?
        && let Ok(old) = TokenSpec::from_secret(&stored)
        && old.token == spec.token
        && old.expires.is_some()
        && !old.expired(now)
    {
        spec.expires = old.expires;
    }
    let fields = Update::Fields(&["type", "data"]);
    Ok(create_or_update(
        client,
        &objects::secrets(),
        &spec.to_secret(),
        fields,
    )?)
}

/// The cluster-info ConfigMap: the kubeconfig from admin.conf, signatures kept while the
/// kubeconfig is unchanged, and (when `sign`) one per signing token.
fn apply_cluster_info(
    client: &kube::Client,
    tokens: &[TokenSpec],
    sign: bool,
) -> Result<Applied, PhaseError> {
    let admin = fs::read_string(ADMIN_CONF)?;
    let (server, ca) = cluster_info::kubeconfig_cluster(&admin)
        .map_err(|e| PhaseError::Failed(format!("{ADMIN_CONF}: {e}; run the kubeconfig phase first")))?;
    let kubeconfig = cluster_info::kubeconfig(&ca, &server);
    let stored = get(
        client,
        &objects::config_maps(),
        Some(cluster_info::NAMESPACE),
        cluster_info::NAME,
    )?;
    let mut cm = stored.unwrap_or_else(|| cluster_info::config_map(&kubeconfig));
    if !cm["data"].is_object() {
        cm["data"] = serde_json::json!({});
    }
    if cm["data"][cluster_info::KUBECONFIG_KEY].as_str() != Some(kubeconfig.as_str())
        && let Some(data) = cm["data"].as_object_mut()
    {
        // Signatures of another kubeconfig can never verify again.
        data.retain(|k, _| !k.starts_with(cluster_info::JWS_KEY_PREFIX));
        data.insert(cluster_info::KUBECONFIG_KEY.into(), kubeconfig.into());
    }
    if sign {
        for t in tokens.iter().filter(|t| t.usages.iter().any(|u| u == "signing")) {
            cluster_info::sign_into(&mut cm, &t.token);
        }
    }
    Ok(create_or_update(
        client,
        &objects::config_maps(),
        &cm,
        Update::Fields(&["data"]),
    )?)
}

fn run(ctx: &Context<'_>) -> Result<PhaseReport, PhaseError> {
    let settings: Settings = ctx.settings()?;
    let now = clock::now();
    let tokens = tokens(ctx, now)?;
    let names: Vec<String> = tokens.iter().map(|(t, _)| t.token.to_string()).collect();
    match names.as_slice() {
        [one] => print(&format!("[bootstrap-token] Using token: {one}")),
        many => print(&format!("[bootstrap-token] Using tokens: [{}]", many.join(" "))),
    }
    print("[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles");
    let client = wasmadm_plugin_sdk::apply::cluster()?;
    for (spec, ttl_based) in &tokens {
        let applied = apply_token(&client, spec, *ttl_based, now)?;
        debug(&format!("Secret {}: {applied:?}", spec.secret_name()));
    }
    for step in objects::node_bootstrap_rbac() {
        for (ty, object) in &step.objects {
            let fields: &[&str] = if ty.kind.ends_with("Binding") {
                &["roleRef", "subjects"]
            } else {
                &["rules"]
            };
            let applied = create_or_update(&client, ty, object, Update::Fields(fields))?;
            debug(&format!(
                "{} {}: {applied:?}",
                ty.kind, object["metadata"]["name"]
            ));
        }
        print(step.line);
    }
    print(&format!(
        "[bootstrap-token] Creating the {:?} ConfigMap in the {:?} namespace",
        cluster_info::NAME,
        cluster_info::NAMESPACE
    ));
    let specs: Vec<TokenSpec> = tokens.into_iter().map(|(t, _)| t).collect();
    let applied = apply_cluster_info(&client, &specs, settings.sign_cluster_info.unwrap_or(false))?;
    debug(&format!("ConfigMap cluster-info: {applied:?}"));
    for (ty, object) in objects::cluster_info_rbac() {
        let fields: &[&str] = if ty.kind == "RoleBinding" {
            &["roleRef", "subjects"]
        } else {
            &["rules"]
        };
        create_or_update(&client, &ty, &object, Update::Fields(fields))?;
    }
    let mut report = Findings::default();
    report.output("token", names.first().cloned().unwrap_or_default());
    report.output("tokens", names.join(","));
    Ok(report.into_report())
}

struct BootstrapToken;

impl Plugin for BootstrapToken {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info(
            "bootstrap-token",
            "Generates bootstrap tokens used to join a node to a cluster",
        );
        info.needs.files_read = vec![ADMIN_CONF.into()];
        info.needs.kube = kube_rules();
        info.needs
            .kube
            .insert(0, wasmadm_plugin_sdk::apply::admin_binding_rule());
        info.settings_example = SETTINGS_EXAMPLE.into();
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        run(&Context::new(&context)?)
    }
}

export_plugin!(BootstrapToken);
