//! kubeadm's `join` discovery (spec §6.3), as a plugin does it: the plugin verifies, the host
//! only connects where the pipeline lets it (`kube.connect`, WIT `0.1.4`).
//!
//! 1. Read `kube-public/cluster-info` anonymously at the discovery endpoint, without trusting the
//!    server yet, until it carries a signature for the token (or `timeouts.discovery` ends).
//! 2. Verify the detached JWS with the token's secret, then the CA against the pins.
//! 3. Read it again, now trusting that CA, and require the same kubeconfig.
//!
//! The result is the cluster's server and CA, from which [`Discovered::bootstrap_kubeconfig`]
//! writes `bootstrap-kubelet.conf` and [`Discovered::client`] talks to the cluster as the
//! bootstrap token (`system:bootstrappers`).

use kubeadm_bootstrap_token::cluster_info::{self, jws_key};
use kubeadm_bootstrap_token::discovery::{self as checks, DiscoveryError};
use kubeadm_bootstrap_token::{Token, clock};
use serde_json::Value;
use std::time::{Duration, Instant};
use wasmadm_plugin_sdk::Context;
use wasmadm_plugin_sdk::config::{ClusterConfiguration, JoinConfiguration, ResolvedConfig};
use wasmadm_plugin_sdk::kube::{self, ApiError, Client, ErrorCode, Identity};
use wasmadm_plugin_sdk::types::{Command, PhaseError};
use wasmadm_plugin_sdk::{apply, print};

/// What discovery found and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The cluster's API server as cluster-info names it (`https://host:port`).
    pub server: String,
    /// The cluster CA (PEM), pinned or (with `unsafeSkipCAVerification`) taken on trust.
    pub ca_pem: Vec<u8>,
    /// The token of the TLS bootstrap (`discovery.tlsBootstrapToken`).
    pub tls_bootstrap_token: String,
}

/// kubeadm's `timeouts.discovery` default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How often progress is printed while the endpoint does not answer with a signed cluster-info.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Runs `join`'s discovery: token discovery, or file discovery with the kubeconfig the host read
/// from `discovery.file.kubeConfigPath` ([`ResolvedConfig::discovery_file`]). A failure reads as
/// kubeadm's: "couldn't validate the identity of the API Server: ...".
pub fn discover(config: &ResolvedConfig) -> Result<Discovered, PhaseError> {
    discover_unprefixed(config).map_err(|e| match e {
        PhaseError::Failed(m) => {
            PhaseError::Failed(format!("couldn't validate the identity of the API Server: {m}"))
        }
        other => other,
    })
}

fn discover_unprefixed(config: &ResolvedConfig) -> Result<Discovered, PhaseError> {
    let invalid = PhaseError::InvalidConfig;
    let join = config.join.clone().unwrap_or_default();
    let timeout = discovery_timeout(&join)?;
    let Some(bt) = &join.discovery.bootstrap_token else {
        return match (&join.discovery.file, &config.discovery_file) {
            (Some(_), Some(text)) => from_file(text, &join, timeout),
            (Some(file), None) => Err(PhaseError::Failed(format!(
                "the host did not hand this phase the discovery file {} (ResolvedConfig.discoveryFile)",
                file.kube_config_path
            ))),
            (None, _) => Err(invalid(
                "discovery: give the API server endpoint and a token (wasmadm join <host:port> \
                 --token <token> --discovery-token-ca-cert-hash sha256:<hex>), or discovery.bootstrapToken \
                 in the JoinConfiguration"
                    .into(),
            )),
        };
    };
    if bt.api_server_endpoint.is_empty() {
        return Err(invalid(
            "discovery.bootstrapToken.apiServerEndpoint is empty: give the API server's host:port \
             (the first argument of `wasmadm join`)"
                .into(),
        ));
    }
    let token =
        Token::parse(&bt.token).map_err(|e| invalid(format!("discovery.bootstrapToken.token: {e}")))?;
    let deadline = Instant::now() + timeout;
    let server = format!("https://{}", bt.api_server_endpoint);

    let insecure = kube::connect(&server, None, &Identity::Anonymous).map_err(PhaseError::from)?;
    let first = poll_cluster_info(&insecure, &server, &token, deadline, timeout)?;
    let kubeconfig = checks::verified_kubeconfig(&first, &token).map_err(refusal)?;
    let (cluster_server, ca_pem) = cluster_info::kubeconfig_cluster(&kubeconfig)
        .map_err(|e| PhaseError::Failed(format!("the cluster-info kubeconfig is not usable: {e}")))?;
    if bt.ca_cert_hashes.is_empty() {
        // Validation allows this only with unsafeSkipCAVerification.
        wasmadm_plugin_sdk::debug(
            "[discovery] Cluster info signature and contents are valid and no TLS pinning was specified, will use API Server",
        );
    } else {
        checks::check_ca_pins(&ca_pem, &bt.ca_cert_hashes).map_err(refusal)?;
    }
    let ca_text = String::from_utf8(ca_pem.clone())
        .map_err(|_| PhaseError::Failed("the cluster CA in cluster-info is not PEM text".into()))?;
    let secure = kube::connect(&server, Some(&ca_text), &Identity::Anonymous).map_err(PhaseError::from)?;
    let again = poll_cluster_info(&secure, &server, &token, deadline, timeout)?;
    if again["data"][cluster_info::KUBECONFIG_KEY].as_str() != Some(kubeconfig.as_str()) {
        return Err(PhaseError::Failed(
            "the second kubeconfig from the cluster-info ConfigMap (using validated TLS) was \
             different from the first"
                .into(),
        ));
    }
    Ok(Discovered {
        server: cluster_server,
        ca_pem,
        tls_bootstrap_token: if join.discovery.tls_bootstrap_token.is_empty() {
            bt.token.clone()
        } else {
            join.discovery.tls_bootstrap_token.clone()
        },
    })
}

/// `timeouts.discovery`, kubeadm's 5m0s when unset.
fn discovery_timeout(join: &JoinConfiguration) -> Result<Duration, PhaseError> {
    Ok(match join.timeouts.discovery.as_deref() {
        Some(text) => Duration::from_secs(
            clock::parse_duration(text)
                .ok_or_else(|| {
                    PhaseError::InvalidConfig(format!("timeouts.discovery: {text:?} is not a duration"))
                })?
                .max(0) as u64,
        ),
        None => DEFAULT_TIMEOUT,
    })
}

/// File discovery (kubeadm's `discovery/file`): the file names the cluster and its CA, which
/// are trusted as they are; then cluster-info is read anonymously with that CA, and when the
/// server gives it, its cluster (server and CA) is used instead, as kubeadm refreshes it. A
/// server that refuses anonymous reads (`forbidden`) leaves the file's. The TLS bootstrap
/// credentials are the file's token, else `discovery.tlsBootstrapToken`.
fn from_file(text: &str, join: &JoinConfiguration, timeout: Duration) -> Result<Discovered, PhaseError> {
    let (server, ca_pem) = cluster_info::kubeconfig_cluster(text)
        .map_err(|e| PhaseError::InvalidConfig(format!("discovery.file: {e}")))?;
    let token = match file_credentials(text)? {
        Some(token) => token,
        None if !join.discovery.tls_bootstrap_token.is_empty() => join.discovery.tls_bootstrap_token.clone(),
        None => {
            return Err(PhaseError::InvalidConfig(
                "could not find authentication credentials for the TLS bootstrap process. Please use \
                 Token discovery, a discovery file with embedded authentication credentials or a \
                 discovery file without authentication credentials but with the TLSBootstrapToken flag"
                    .into(),
            ));
        }
    };
    Token::parse(&token).map_err(|e| PhaseError::InvalidConfig(format!("the TLS bootstrap token: {e}")))?;
    let ca_text = String::from_utf8(ca_pem.clone())
        .map_err(|_| PhaseError::InvalidConfig("discovery.file: the CA is not PEM text".into()))?;
    let client = kube::connect(&server, Some(&ca_text), &Identity::Anonymous).map_err(PhaseError::from)?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    let refreshed = loop {
        match client.get(
            &apply::config_maps(),
            Some(cluster_info::NAMESPACE),
            cluster_info::NAME,
        ) {
            Ok(text) => {
                let cm = apply::parse(&text)?;
                let kubeconfig = cm["data"][cluster_info::KUBECONFIG_KEY]
                    .as_str()
                    .ok_or_else(|| refusal(DiscoveryError::NoKubeconfig))?;
                break Some(cluster_info::kubeconfig_cluster(kubeconfig).map_err(|e| {
                    PhaseError::Failed(format!("the cluster-info kubeconfig is not usable: {e}"))
                })?);
            }
            Err(e) if e.code == ErrorCode::Forbidden => break None,
            Err(e) if e.code == ErrorCode::Denied || e.code == ErrorCode::Invalid => {
                return Err(PhaseError::from(e));
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(PhaseError::Failed(format!(
                    "failed to request the cluster-info ConfigMap: {} (gave up at {server} after {}, \
                     timeouts.discovery)",
                    e.message,
                    clock::format_duration(timeout.as_secs() as i64)
                )));
            }
            Err(_) => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    };
    let (server, ca_pem) = refreshed.unwrap_or((server, ca_pem));
    Ok(Discovered {
        server,
        ca_pem,
        tls_bootstrap_token: token,
    })
}

/// The token of the discovery file's current user, if it has one. Other credentials (client
/// certificates, exec plugins) are refused: the bootstrap kubeconfig carries a token only.
fn file_credentials(text: &str) -> Result<Option<String>, PhaseError> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| PhaseError::InvalidConfig(format!("discovery.file: not YAML: {e}")))?;
    let current = doc["current-context"].as_str().unwrap_or_default();
    let user_name = doc["contexts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|c| c["name"].as_str() == Some(current))
        .and_then(|c| c["context"]["user"].as_str());
    let users = doc["users"].as_sequence().cloned().unwrap_or_default();
    let user = match user_name {
        Some(name) => users.iter().find(|u| u["name"].as_str() == Some(name)),
        None => users.first(),
    };
    let Some(user) = user.map(|u| &u["user"]) else {
        return Ok(None);
    };
    if let Some(token) = user["token"].as_str().filter(|t| !t.is_empty()) {
        return Ok(Some(token.to_string()));
    }
    let other = [
        "client-certificate",
        "client-certificate-data",
        "exec",
        "auth-provider",
        "tokenFile",
    ];
    if let Some(kind) = other.iter().find(|k| !user[**k].is_null()) {
        return Err(PhaseError::InvalidConfig(format!(
            "discovery.file: credentials of kind {kind:?} are not supported by wasmadm yet; use a \
             token (users[].user.token) or --tls-bootstrap-token"
        )));
    }
    Ok(None)
}

/// kubeadm's refusal wording for what discovery cannot trust.
fn refusal(e: DiscoveryError) -> PhaseError {
    match e {
        DiscoveryError::BadPin(_) => PhaseError::InvalidConfig(e.to_string()),
        other => PhaseError::Failed(other.to_string()),
    }
}

/// Reads cluster-info until it is signed for `token`, backing off from 100 ms to 2 s (kubeadm
/// polls every 5 s), printing progress every 10 s; at the deadline, the last reason.
fn poll_cluster_info(
    client: &Client,
    server: &str,
    token: &Token,
    deadline: Instant,
    timeout: Duration,
) -> Result<Value, PhaseError> {
    let ty = apply::config_maps();
    let started = Instant::now();
    let mut next_progress = started + PROGRESS_EVERY;
    let mut pause = Duration::from_millis(100);
    loop {
        // kubeadm's words for each failed attempt; the last one is the error at the deadline.
        let last = match client.get(&ty, Some(cluster_info::NAMESPACE), cluster_info::NAME) {
            Ok(text) => {
                let cm = apply::parse(&text)?;
                if cm["data"][jws_key(&token.id)].is_string() {
                    return Ok(cm);
                }
                if !cm["data"][cluster_info::KUBECONFIG_KEY].is_string() {
                    return Err(refusal(DiscoveryError::NoKubeconfig));
                }
                format!(
                    "could not find a JWS signature in the cluster-info ConfigMap for token ID {:?}",
                    token.id
                )
            }
            Err(e) if e.code == ErrorCode::Denied || e.code == ErrorCode::Invalid => {
                return Err(PhaseError::from(e));
            }
            Err(ApiError { message, .. }) => {
                format!("failed to request the cluster-info ConfigMap: {message}")
            }
        };
        let now = Instant::now();
        if now >= deadline {
            let hint = if last.starts_with("could not find a JWS signature") {
                "the token is unknown to the cluster or expired: create one with `wasmadm token create` \
                 on a control-plane node"
            } else {
                "is the API server up and reachable from this node?"
            };
            return Err(PhaseError::Failed(format!(
                "{last} (gave up at {server} after {}, timeouts.discovery; {hint})",
                clock::format_duration(timeout.as_secs() as i64)
            )));
        }
        if now >= next_progress {
            print(&format!(
                "[discovery] Still waiting for a signed cluster-info from {server} after {}s: {last}",
                started.elapsed().as_secs()
            ));
            next_progress = now + PROGRESS_EVERY;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

impl Discovered {
    /// `bootstrap-kubelet.conf`, as kubeadm writes it: cluster `kubernetes` with the CA
    /// embedded, user `tls-bootstrap-token-user` with the TLS bootstrap token.
    pub fn bootstrap_kubeconfig(&self) -> String {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {}\n  \
             name: {CLUSTER}\ncontexts:\n- context:\n    cluster: {CLUSTER}\n    user: {USER}\n  \
             name: {USER}@{CLUSTER}\ncurrent-context: {USER}@{CLUSTER}\nkind: Config\nusers:\n- \
             name: {USER}\n  user:\n    token: {}\n",
            self.server, self.tls_bootstrap_token
        )
    }

    /// The cluster as the TLS bootstrap token (the rules of the phase with `identity:
    /// bootstrap-token`).
    pub fn client(&self) -> Result<Client, PhaseError> {
        let ca = String::from_utf8_lossy(&self.ca_pem).into_owned();
        kube::connect(
            &self.server,
            Some(&ca),
            &Identity::BootstrapToken(self.tls_bootstrap_token.clone()),
        )
        .map_err(PhaseError::from)
    }
}

/// The cluster's ClusterConfiguration (`kube-system/kubeadm-config`), defaulted, as the
/// bootstrap token reads it (kubeadm's `FetchInitConfigurationFromCluster`).
pub fn cluster_configuration(client: &Client) -> Result<ClusterConfiguration, PhaseError> {
    let cm = read_config_map(client, "kubeadm-config")?;
    let yaml = cm["data"]["ClusterConfiguration"].as_str().ok_or_else(|| {
        PhaseError::Failed(
            "unexpected error when reading kubeadm-config ConfigMap: ClusterConfiguration key value pair missing"
                .into(),
        )
    })?;
    let mut cluster: ClusterConfiguration = serde_yaml::from_str(yaml).map_err(|e| {
        PhaseError::Failed(format!(
            "the ClusterConfiguration in the kubeadm-config ConfigMap cannot be read: {e}"
        ))
    })?;
    wasmadm_plugin_sdk::config::defaults::cluster_configuration(&mut cluster);
    Ok(cluster)
}

/// The cluster-wide KubeletConfiguration (`kube-system/kubelet-config`), as the bootstrap token
/// reads it.
pub fn kubelet_configuration(client: &Client) -> Result<Value, PhaseError> {
    let cm = read_config_map(client, "kubelet-config")?;
    let text = cm["data"]["kubelet"]
        .as_str()
        .ok_or_else(|| PhaseError::Failed("the kubelet-config ConfigMap has no \"kubelet\" key".into()))?;
    let value: Value = serde_yaml::from_str(text).map_err(|e| {
        PhaseError::Failed(format!(
            "the KubeletConfiguration in the kubelet-config ConfigMap cannot be read: {e}"
        ))
    })?;
    if !value.is_object() {
        return Err(PhaseError::Failed(
            "the KubeletConfiguration in the kubelet-config ConfigMap is not a mapping".into(),
        ));
    }
    Ok(value)
}

/// ConfigMap `kube-system/<name>`; a failure reads as kubeadm's "unable to fetch the <name>
/// ConfigMap".
fn read_config_map(client: &Client, name: &str) -> Result<Value, PhaseError> {
    let text = client
        .get(&apply::config_maps(), Some("kube-system"), name)
        .map_err(|e| match e.code {
            ErrorCode::Denied => PhaseError::Denied(e.message),
            _ => PhaseError::Failed(format!("unable to fetch the {name} ConfigMap: {}", e.message)),
        })?;
    Ok(apply::parse(&text)?)
}

/// A joining control plane's configuration as kubeadm builds it
/// (`fetchInitConfigurationFromJoinConfiguration`): `config` with the cluster's ClusterConfiguration
/// `cluster`, and an InitConfiguration made of the JoinConfiguration's node registration, local
/// API endpoint, certificate key and timeouts. The phases that `init` and a control-plane `join`
/// share (certs, kubeconfig, control-plane) run on it unchanged.
pub fn control_plane_config(config: &ResolvedConfig, cluster: ClusterConfiguration) -> ResolvedConfig {
    let join = config.join.clone().unwrap_or_default();
    let mut init = wasmadm_plugin_sdk::config::InitConfiguration::default();
    wasmadm_plugin_sdk::config::defaults::init_configuration(&mut init, &join.node_registration.name);
    init.bootstrap_tokens.clear();
    init.node_registration = join.node_registration.clone();
    if let Some(cp) = &join.control_plane {
        init.local_api_endpoint = cp.local_api_endpoint.clone();
        init.certificate_key = cp.certificate_key.clone();
    }
    init.timeouts = join.timeouts.clone();
    ResolvedConfig {
        init: Some(init),
        cluster: Some(cluster),
        ..config.clone()
    }
}

/// How a phase that `init` and a control-plane `join` share runs this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedPhase {
    /// `init`: the context as the host resolved it.
    Init,
    /// A control-plane `join`: the context now holds the joining node's configuration; the
    /// phase adds these outputs to its report ([`announce_config_read`]).
    JoiningControlPlane(Vec<(String, String)>),
    /// A worker `join`: nothing to do (kubeadm's control-plane phases return at once).
    Worker,
}

/// Prepares `ctx` for a phase `init` and a control-plane `join` share (certs, kubeconfig,
/// control-plane): on a control-plane join its configuration becomes
/// [`control_plane_config`]'s.
pub fn prepare_shared_phase(ctx: &mut Context<'_>) -> Result<SharedPhase, PhaseError> {
    if ctx.command() != Command::Join {
        return Ok(SharedPhase::Init);
    }
    if !ctx.is_control_plane() {
        return Ok(SharedPhase::Worker);
    }
    let (cluster, outputs) = read_cluster(ctx)?;
    ctx.config = control_plane_config(&ctx.config, cluster);
    Ok(SharedPhase::JoiningControlPlane(outputs))
}

/// Discovers the cluster and reads its ClusterConfiguration as the bootstrap token, saying so as
/// kubeadm does ([`announce_config_read`]): the configuration, and the output for the phase's
/// report.
pub fn read_cluster(ctx: &Context<'_>) -> Result<(ClusterConfiguration, Vec<(String, String)>), PhaseError> {
    let client = discover(&ctx.config)?.client()?;
    let outputs = announce_config_read(ctx);
    Ok((cluster_configuration(&client)?, outputs))
}

/// The output of the phase that first said it reads the cluster's configuration.
pub const CONFIG_READ_OUTPUT: &str = "kubeadm-config-read";

/// kubeadm reads the cluster's configuration once per `join`, when a phase first needs it, and
/// says so then. Prints its two lines unless an earlier phase of this run did; returns the
/// output for the phase's report that tells later phases so.
pub fn announce_config_read(ctx: &Context<'_>) -> Vec<(String, String)> {
    let suffix = format!(".{CONFIG_READ_OUTPUT}");
    if ctx.raw.inputs.iter().any(|(k, _)| k.ends_with(&suffix)) {
        return Vec::new();
    }
    print(
        "[preflight] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...",
    );
    print(
        "[preflight] Use 'wasmadm init phase upload-config kubeadm --config your-config-file' to re-upload it.",
    );
    vec![(CONFIG_READ_OUTPUT.to_string(), "true".to_string())]
}

/// kubeadm's names in the TLS bootstrap kubeconfig.
const CLUSTER: &str = "kubernetes";
const USER: &str = "tls-bootstrap-token-user";
