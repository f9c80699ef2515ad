//! Loading kubeadm's `--config`: a multi-document YAML file of `kubeadm.k8s.io/v1beta4`
//! InitConfiguration / ClusterConfiguration / JoinConfiguration (plus component configurations
//! such as KubeletConfiguration, passed through), merged with the command-line flags, defaulted
//! and validated.

use crate::http;
use crate::values::Url;
use kubeadm_config::{
    ClusterConfiguration, InitConfiguration, JoinConfiguration, ResolvedConfig, defaults, validate,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration that cannot be used; wasmadm exits with code 3.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// `message` names the file, line and field.
    #[error("{0}")]
    Invalid(String),
}

/// The command-line flags that override the file.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub node_name: Option<String>,
    pub ignore_preflight_errors: Vec<String>,
    pub skip_phases: Vec<String>,
    pub control_plane: bool,
    pub cri_socket: Option<String>,
    /// `init` flags that set configuration fields (kubeadm refuses them together with --config).
    pub init: InitFlags,
    /// `join` flags that set configuration fields (refused together with --config too).
    pub join: JoinFlags,
}

/// kubeadm's `join` arguments that map to JoinConfiguration fields.
#[derive(Debug, Default, Clone)]
pub struct JoinFlags {
    /// The positional `[api-server-endpoint]` (ignored with --config, as in kubeadm).
    pub api_server_endpoint: Option<String>,
    /// `--token`: the discovery and the TLS bootstrap token, where those are not given.
    pub token: Option<String>,
    pub discovery_token: Option<String>,
    pub discovery_token_ca_cert_hash: Vec<String>,
    pub discovery_token_unsafe_skip_ca_verification: bool,
    pub discovery_file: Option<String>,
    pub tls_bootstrap_token: Option<String>,
    pub certificate_key: Option<String>,
    pub apiserver_advertise_address: Option<String>,
    pub apiserver_bind_port: Option<u16>,
}

impl JoinFlags {
    /// The flag names given, sorted as kubeadm lists them in its "can not mix" error.
    fn given(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = [
            (
                self.apiserver_advertise_address.is_some(),
                "apiserver-advertise-address",
            ),
            (self.apiserver_bind_port.is_some(), "apiserver-bind-port"),
            (self.certificate_key.is_some(), "certificate-key"),
            (self.discovery_file.is_some(), "discovery-file"),
            (self.discovery_token.is_some(), "discovery-token"),
            (
                !self.discovery_token_ca_cert_hash.is_empty(),
                "discovery-token-ca-cert-hash",
            ),
            (
                self.discovery_token_unsafe_skip_ca_verification,
                "discovery-token-unsafe-skip-ca-verification",
            ),
            (self.tls_bootstrap_token.is_some(), "tls-bootstrap-token"),
            (self.token.is_some(), "token"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        names.sort_unstable();
        names
    }

    /// Fills the JoinConfiguration as kubeadm's `newJoinData` does without --config: the endpoint
    /// makes token discovery, `--token` fills whichever token is not given.
    fn apply(&self, join: &mut JoinConfiguration) {
        if let Some(endpoint) = &self.api_server_endpoint {
            join.discovery.bootstrap_token = Some(kubeadm_config::BootstrapTokenDiscovery {
                token: self
                    .discovery_token
                    .clone()
                    .or(self.token.clone())
                    .unwrap_or_default(),
                api_server_endpoint: endpoint.clone(),
                ca_cert_hashes: self.discovery_token_ca_cert_hash.clone(),
                unsafe_skip_ca_verification: self.discovery_token_unsafe_skip_ca_verification,
            });
        }
        if let Some(file) = self.discovery_file.as_ref().filter(|f| !f.is_empty()) {
            join.discovery.file = Some(kubeadm_config::FileDiscovery {
                kube_config_path: file.clone(),
            });
        }
        if let Some(token) = self.tls_bootstrap_token.clone().or(self.token.clone()) {
            join.discovery.tls_bootstrap_token = token;
        }
        if let Some(cp) = join.control_plane.as_mut() {
            if let Some(address) = &self.apiserver_advertise_address {
                cp.local_api_endpoint.advertise_address = address.clone();
            }
            if let Some(port) = self.apiserver_bind_port {
                cp.local_api_endpoint.bind_port = port;
            }
            if let Some(key) = &self.certificate_key {
                cp.certificate_key = key.clone();
            }
        }
    }
}

/// kubeadm's `init` flags that map to configuration fields.
#[derive(Debug, Default, Clone)]
pub struct InitFlags {
    pub apiserver_advertise_address: Option<String>,
    pub apiserver_bind_port: Option<u16>,
    pub apiserver_cert_extra_sans: Vec<String>,
    pub cert_dir: Option<String>,
    pub control_plane_endpoint: Option<String>,
    pub kubernetes_version: Option<String>,
    pub pod_network_cidr: Option<String>,
    pub service_cidr: Option<String>,
    pub service_dns_domain: Option<String>,
    pub image_repository: Option<String>,
    /// `--upload-certs` (allowed with --config, as in kubeadm).
    pub upload_certs: bool,
    /// `--certificate-key`: sets `certificateKey` (refused with --config, as in kubeadm, which
    /// wants it in the file).
    pub certificate_key: Option<String>,
    /// `--skip-certificate-key-print`.
    pub skip_certificate_key_print: bool,
}

impl InitFlags {
    /// The flag names given, as kubeadm lists them in its "can not mix" error.
    fn given(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        let mut add = |set: bool, name: &'static str| {
            if set {
                names.push(name);
            }
        };
        add(
            self.apiserver_advertise_address.is_some(),
            "apiserver-advertise-address",
        );
        add(self.apiserver_bind_port.is_some(), "apiserver-bind-port");
        add(
            !self.apiserver_cert_extra_sans.is_empty(),
            "apiserver-cert-extra-sans",
        );
        add(self.cert_dir.is_some(), "cert-dir");
        add(self.control_plane_endpoint.is_some(), "control-plane-endpoint");
        add(self.kubernetes_version.is_some(), "kubernetes-version");
        add(self.pod_network_cidr.is_some(), "pod-network-cidr");
        add(self.service_cidr.is_some(), "service-cidr");
        add(self.service_dns_domain.is_some(), "service-dns-domain");
        add(self.image_repository.is_some(), "image-repository");
        add(self.certificate_key.is_some(), "certificate-key");
        names
    }

    fn apply(&self, init: &mut InitConfiguration, cluster: &mut ClusterConfiguration) {
        let set = |field: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                *field = v.clone();
            }
        };
        set(
            &mut init.local_api_endpoint.advertise_address,
            &self.apiserver_advertise_address,
        );
        if let Some(port) = self.apiserver_bind_port {
            init.local_api_endpoint.bind_port = port;
        }
        cluster
            .api_server
            .cert_sans
            .extend(self.apiserver_cert_extra_sans.iter().cloned());
        set(&mut cluster.certificates_dir, &self.cert_dir);
        set(&mut cluster.control_plane_endpoint, &self.control_plane_endpoint);
        set(&mut cluster.kubernetes_version, &self.kubernetes_version);
        set(&mut cluster.networking.pod_subnet, &self.pod_network_cidr);
        set(&mut cluster.networking.service_subnet, &self.service_cidr);
        set(&mut cluster.networking.dns_domain, &self.service_dns_domain);
        set(&mut cluster.image_repository, &self.image_repository);
    }
}

/// The component configurations kubeadm accepts beside its own objects.
const COMPONENT_KINDS: [(&str, &str); 2] = [
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
    ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"),
];

/// Splits a multi-document YAML text at `---` lines; returns each document with the 0-based line
/// where it starts.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = vec![(0usize, String::new())];
    for (n, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push((n + 1, String::new()));
        } else if let Some((_, doc)) = docs.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.retain(|(_, d)| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

fn parse_doc<T: serde::de::DeserializeOwned>(
    path: &Path,
    doc: &str,
    offset: usize,
) -> Result<T, ConfigError> {
    serde_yaml::from_str(doc).map_err(|e| ConfigError::Invalid(super::yaml_error(path, &e, offset)))
}

/// Parses a kubeadm configuration text (`path` names it in errors). Unknown kinds and API versions
/// are refused with the line of the document.
pub fn parse(text: &str, path: &Path) -> Result<ResolvedConfig, ConfigError> {
    let mut config = ResolvedConfig::default();
    for (offset, doc) in documents(text) {
        let head: serde_yaml::Value = serde_yaml::from_str(&doc)
            .map_err(|e| ConfigError::Invalid(super::yaml_error(path, &e, offset)))?;
        let api_version = head
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let kind = head.get("kind").and_then(|v| v.as_str()).unwrap_or_default();
        let at = format!("{}:{}", path.display(), offset + 1);
        if api_version == kubeadm_config::API_VERSION {
            match kind {
                "InitConfiguration" => config.init = Some(parse_doc(path, &doc, offset)?),
                "ClusterConfiguration" => config.cluster = Some(parse_doc(path, &doc, offset)?),
                "JoinConfiguration" => config.join = Some(parse_doc(path, &doc, offset)?),
                other => {
                    return Err(ConfigError::Invalid(format!(
                        "{at}: kind {other:?} is not supported; use InitConfiguration, \
                         ClusterConfiguration or JoinConfiguration"
                    )));
                }
            }
        } else if let Some((_, k)) = COMPONENT_KINDS
            .iter()
            .find(|(v, k)| *v == api_version && *k == kind)
        {
            let value: serde_json::Value = parse_doc(path, &doc, offset)?;
            config.components.insert(k.to_string(), value);
        } else if api_version.starts_with("kubeadm.k8s.io/") {
            return Err(ConfigError::Invalid(format!(
                "{at}: apiVersion {api_version:?} is not supported; wasmadm reads {} (convert older \
                 files with `kubeadm config migrate`)",
                kubeadm_config::API_VERSION
            )));
        } else {
            return Err(ConfigError::Invalid(format!(
                "{at}: unknown document apiVersion {api_version:?} kind {kind:?}; expected {} objects or \
                 a KubeletConfiguration/KubeProxyConfiguration",
                kubeadm_config::API_VERSION
            )));
        }
    }
    Ok(config)
}

/// Reads `--config` (if any), merges `flags`, applies kubeadm's defaults for `command` and
/// validates. `host_name` is the default node name.
pub fn resolve(
    file: Option<&Path>,
    command: crate::command::Command,
    flags: &Flags,
    host_name: &str,
) -> Result<ResolvedConfig, ConfigError> {
    use crate::command::Command;
    let mut config = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            parse(&text, path)?
        }
        None => ResolvedConfig::default(),
    };
    let source = file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "flags".into());
    let mut errors: Vec<String> = Vec::new();
    let node_name = flags
        .node_name
        .clone()
        .unwrap_or_else(|| host_name.to_lowercase());

    match command {
        Command::Init => {
            let given = flags.init.given();
            if file.is_some() && !given.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "can not mix '--config' with arguments [{}]: set these fields in the config file",
                    given.join(" ")
                )));
            }
            if config.join.is_some() {
                return Err(ConfigError::Invalid(format!(
                    "{source}: a JoinConfiguration cannot be used with `init`"
                )));
            }
            let init = config.init.get_or_insert_with(InitConfiguration::default);
            if file.is_none() && init.bootstrap_tokens.is_empty() {
                // kubeadm describes the token it generates when no configuration file is used.
                init.bootstrap_tokens.push(kubeadm_config::BootstrapToken {
                    description: Some(kubeadm_bootstrap_token::INIT_DESCRIPTION.into()),
                    ..Default::default()
                });
            }
            let cluster = config.cluster.get_or_insert_with(ClusterConfiguration::default);
            flags.init.apply(init, cluster);
            if let Some(key) = &flags.init.certificate_key {
                init.certificate_key = key.clone();
            }
            config.upload_certs = flags.init.upload_certs;
            config.skip_certificate_key_print = flags.init.skip_certificate_key_print;
            let init = config.init.get_or_insert_with(InitConfiguration::default);
            if let Some(n) = &flags.node_name {
                init.node_registration.name = n.clone();
            }
            if let Some(s) = &flags.cri_socket {
                init.node_registration.cri_socket = s.clone();
            }
            init.node_registration
                .ignore_preflight_errors
                .extend(flags.ignore_preflight_errors.iter().cloned());
            defaults::init_configuration(init, &node_name);
            dedup_lowercase(&mut init.node_registration.ignore_preflight_errors);
            errors.extend(
                validate::init_configuration(init)
                    .into_iter()
                    .map(|e| e.to_string()),
            );
            let cluster = config.cluster.get_or_insert_with(ClusterConfiguration::default);
            defaults::cluster_configuration(cluster);
            errors.extend(
                validate::cluster_configuration(cluster)
                    .into_iter()
                    .map(|e| e.to_string()),
            );
            let skipped = skip_phases(&config, &flags.skip_phases);
            if let Some(cluster) = &mut config.cluster {
                disable_skipped_addons(cluster, &skipped);
            }
        }
        Command::Join | Command::Reset => {
            if config.init.is_some() && command == Command::Join {
                return Err(ConfigError::Invalid(format!(
                    "{source}: an InitConfiguration cannot be used with `join`"
                )));
            }
            let given = flags.join.given();
            if file.is_some() && !given.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "can not mix '--config' with arguments [{}]: set these fields in the config file",
                    given.join(" ")
                )));
            }
            let join = config.join.get_or_insert_with(JoinConfiguration::default);
            if let Some(s) = &flags.cri_socket {
                join.node_registration.cri_socket = s.clone();
            }
            if flags.control_plane && join.control_plane.is_none() {
                join.control_plane = Some(Default::default());
            }
            if file.is_none() {
                flags.join.apply(join);
            }
            if let Some(n) = &flags.node_name {
                join.node_registration.name = n.clone();
            }
            join.node_registration
                .ignore_preflight_errors
                .extend(flags.ignore_preflight_errors.iter().cloned());
            defaults::join_configuration(join, &node_name);
            dedup_lowercase(&mut join.node_registration.ignore_preflight_errors);
            if command == Command::Join {
                errors.extend(
                    validate::join_configuration(join)
                        .into_iter()
                        .map(|e| e.to_string()),
                );
            } else if let Err(e) = validate::ignore_preflight_errors(
                "ignore-preflight-errors",
                &join.node_registration.ignore_preflight_errors,
            ) {
                errors.push(e.to_string());
            }
            if let Some(cluster) = &mut config.cluster {
                defaults::cluster_configuration(cluster);
            }
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(format!(
            "{source}: invalid configuration:\n\t{}",
            errors.join("\n\t")
        )))
    }
}

/// The largest discovery file wasmadm reads (a kubeconfig is a few kilobytes).
const MAX_DISCOVERY_FILE: u64 = 1 << 20;

/// Reads the kubeconfig of file discovery (`discovery.file.kubeConfigPath`, a node path under
/// `root`) into the resolved configuration, for the phases that discover the cluster.
pub fn read_discovery_file(config: &mut ResolvedConfig, root: &Path) -> Result<(), ConfigError> {
    let Some(file) = config.join.as_ref().and_then(|j| j.discovery.file.as_ref()) else {
        return Ok(());
    };
    let path = &file.kube_config_path;
    let field = "discovery.file.kubeConfigPath (--discovery-file)";
    let scheme = path.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let text = match scheme.as_deref() {
        Some("https") => {
            let timeout = config
                .join
                .as_ref()
                .and_then(|j| j.timeouts.discovery.as_deref())
                .and_then(validate::parse_duration)
                .map_or(DISCOVERY_TIMEOUT, Duration::from_secs_f64);
            fetch_discovery_url(path, root, timeout)
                .map_err(|e| ConfigError::Invalid(format!("{field}: {e}")))?
        }
        Some(_) => {
            return Err(ConfigError::Invalid(format!(
                "{field}: {path:?}: a discovery file is read from a node path or fetched from an https:// \
                 URL (its server verified by the node's trust store); use https://"
            )));
        }
        None => read_node_kubeconfig(path, root, field)?,
    };
    kubeadm_bootstrap_token::cluster_info::kubeconfig_cluster(&text)
        .map_err(|e| ConfigError::Invalid(format!("{field}: {path}: {e}")))?;
    config.discovery_file = Some(text);
    Ok(())
}

/// The discovery kubeconfig at node path `path` (absolute, under `root`): a regular file of at
/// most [`MAX_DISCOVERY_FILE`] bytes.
fn read_node_kubeconfig(path: &str, root: &Path, field: &str) -> Result<String, ConfigError> {
    if !path.starts_with('/') {
        return Err(ConfigError::Invalid(format!(
            "{field}: {path:?} is not an absolute path"
        )));
    }
    let host_path = root.join(path.trim_start_matches('/'));
    let read = |source: std::io::Error| ConfigError::Read {
        path: host_path.clone(),
        source,
    };
    let meta = std::fs::metadata(&host_path).map_err(read)?;
    if !meta.is_file() || meta.len() > MAX_DISCOVERY_FILE {
        return Err(ConfigError::Invalid(format!(
            "{field}: {path} is not a kubeconfig file (a regular file of at most 1 MiB)"
        )));
    }
    std::fs::read_to_string(&host_path).map_err(read)
}

/// kubeadm's `discovery.timeout` when the configuration does not set one.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Fetches the discovery kubeconfig from an `https://` URL, as kubeadm's `discovery/https` does:
/// one `GET`, the server verified by the node's trust store ([`http::system_roots`]), within the
/// discovery timeout. Unlike kubeadm, an answer other than `200` is an error of its own.
fn fetch_discovery_url(text: &str, root: &Path, timeout: Duration) -> Result<String, String> {
    // The query (a pre-signed URL's signature, say) goes to the server as given; a fragment never does.
    let text_without_fragment = text.split('#').next().unwrap_or_default();
    let (base, query) = match text_without_fragment.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (text_without_fragment, None),
    };
    let mut url = Url::parse(base, false)?;
    if let Some(query) = query {
        if query.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "URL {text:?}: the query may not hold spaces or control characters"
            ));
        }
        url.path = format!("{}?{query}", url.path);
    }
    let roots = http::system_roots(root)?;
    let tls = http::client_builder()
        .map_err(|e| format!("GET {url}: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let deadline = std::time::Instant::now() + timeout;
    let (raw, truncated) = http::get(&url, Some(std::sync::Arc::new(tls)), deadline).map_err(|e| {
        if http::tls_cause(&e).is_some() {
            format!(
                "GET {url}: TLS: {e}; the server's certificate must chain to a CA of the node's trust \
                 store ({})",
                http::TRUST_STORE_HINT
            )
        } else if e.kind() == std::io::ErrorKind::TimedOut {
            format!("GET {url}: no answer within the discovery timeout ({timeout:?})")
        } else {
            format!("GET {url}: {e}")
        }
    })?;
    let answer = http::parse_response(&raw, truncated).map_err(|e| format!("GET {url}: {e}"))?;
    if answer.status != 200 {
        return Err(format!(
            "GET {url}: the server answered {} instead of the kubeconfig",
            answer.status
        ));
    }
    if answer.truncated {
        return Err(format!(
            "GET {url}: the answer is longer than {} bytes, more than a kubeconfig",
            http::MAX_BODY
        ));
    }
    Ok(answer.body)
}

/// kubeadm merges the flag and file lists into a lower-cased set.
fn dedup_lowercase(list: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    list.retain_mut(|s| {
        *s = s.trim().to_lowercase();
        !s.is_empty() && seen.insert(s.clone())
    });
}

/// The `skipPhases` of the configuration when the flag gave none (the flag wins, as in kubeadm).
pub fn skip_phases(config: &ResolvedConfig, flag: &[String]) -> Vec<String> {
    if !flag.is_empty() {
        return flag.to_vec();
    }
    config
        .init
        .as_ref()
        .map(|i| i.skip_phases.clone())
        .or_else(|| config.join.as_ref().map(|j| j.skip_phases.clone()))
        .unwrap_or_default()
}

/// kubeadm's `manageSkippedAddons`: skipping `addon/coredns`, `addon/kube-proxy` or the whole
/// `addon` phase (flag or `skipPhases`) disables that addon in the ClusterConfiguration that
/// `upload-config` stores. kubeadm takes `addon/all` as no skip at all: it disables nothing.
fn disable_skipped_addons(cluster: &mut ClusterConfiguration, skipped: &[String]) {
    let skips = |sub: &str| {
        skipped.iter().any(|s| {
            let s = s.trim().to_lowercase();
            s == "addon" || s.strip_prefix("addon/") == Some(sub)
        })
    };
    if skips("coredns") {
        cluster.dns.disabled = true;
    }
    if skips("kube-proxy") {
        cluster.proxy.disabled = true;
    }
}

/// Skips implied by the configuration (`dns.disabled`, `proxy.disabled`), as kubeadm adds them.
/// Unlike user-given names these are not an error when the pipeline has no such phase.
pub fn implied_skips(config: &ResolvedConfig) -> Vec<String> {
    let mut skip = Vec::new();
    if let (Some(c), Some(_)) = (&config.cluster, &config.init) {
        if c.dns.disabled {
            skip.push("addon/coredns".into());
        }
        if c.proxy.disabled {
            skip.push("addon/kube-proxy".into());
        }
    }
    skip
}

/// `wasmadm config print init-defaults`: what kubeadm prints, with its placeholders (token
/// `abcdef.0123456789abcdef`, advertise address `1.2.3.4`, node name `node`).
pub fn init_defaults_yaml() -> Result<String, ConfigError> {
    let mut init = InitConfiguration::default();
    init.bootstrap_tokens.push(kubeadm_config::BootstrapToken {
        token: "abcdef.0123456789abcdef".into(),
        ..Default::default()
    });
    init.local_api_endpoint.advertise_address = "1.2.3.4".into();
    defaults::init_configuration(&mut init, "node");
    let mut cluster = ClusterConfiguration::default();
    defaults::cluster_configuration(&mut cluster);
    Ok(format!("{}---\n{}", to_yaml(&init)?, to_yaml(&cluster)?))
}

/// `wasmadm config print join-defaults`.
pub fn join_defaults_yaml() -> Result<String, ConfigError> {
    let mut join = JoinConfiguration::default();
    join.discovery.bootstrap_token = Some(kubeadm_config::BootstrapTokenDiscovery {
        token: "abcdef.0123456789abcdef".into(),
        api_server_endpoint: "kube-apiserver:6443".into(),
        ca_cert_hashes: Vec::new(),
        unsafe_skip_ca_verification: true,
    });
    defaults::join_configuration(&mut join, "node");
    to_yaml(&join)
}

fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, ConfigError> {
    serde_yaml::to_string(value).map_err(|e| ConfigError::Invalid(format!("cannot print defaults: {e}")))
}

/// kubeadm's choice of an advertise address when the configuration has none
/// (`ChooseAPIServerBindAddress`): the address this machine uses for its default route, with
/// `--root` too (kubeadm's `--rootfs` moves the file system, not the network).
///
/// The route lookup is the kernel's: connecting a UDP socket sends nothing but binds the source
/// address the default route would use (IPv4 first, then IPv6).
pub fn detect_advertise_address(config: &mut ResolvedConfig) -> Result<Option<String>, ConfigError> {
    let endpoint = match (config.init.as_mut(), config.join.as_mut()) {
        (Some(init), _) => &mut init.local_api_endpoint,
        (None, Some(join)) => match join.control_plane.as_mut() {
            Some(cp) => &mut cp.local_api_endpoint,
            None => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    if !endpoint.advertise_address.is_empty() {
        return Ok(None);
    }
    let probe = |bind: &str, target: &str| -> Option<std::net::IpAddr> {
        let socket = std::net::UdpSocket::bind(bind).ok()?;
        socket.connect(target).ok()?;
        let ip = socket.local_addr().ok()?.ip();
        (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
    };
    // Documentation addresses (RFC 5737, RFC 3849): routed by the default route, never answered.
    let ip = probe("0.0.0.0:0", "192.0.2.1:9")
        .or_else(|| probe("[::]:0", "[2001:db8::1]:9"))
        .ok_or_else(|| {
            ConfigError::Invalid(
                "localAPIEndpoint.advertiseAddress is not set and this host has no default route to take \
                 it from: set it in the InitConfiguration or pass --apiserver-advertise-address"
                    .into(),
            )
        })?;
    endpoint.advertise_address = ip.to_string();
    Ok(Some(endpoint.advertise_address.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(advertise: &str) -> ResolvedConfig {
        let mut flags = Flags::default();
        flags.init.apiserver_advertise_address = (!advertise.is_empty()).then(|| advertise.to_string());
        resolve(None, crate::command::Command::Init, &flags, "n1").expect("config")
    }

    /// (dns.disabled, proxy.disabled) after resolving `file` (if any) with `--skip-phases flag`.
    fn disabled_addons(file: Option<&str>, flag: &[&str]) -> (bool, bool) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("config.yaml");
        if let Some(text) = file {
            std::fs::write(&path, text).expect("write");
        }
        let mut flags = Flags {
            skip_phases: flag.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        if file.is_none() {
            flags.init.apiserver_advertise_address = Some("10.0.0.7".into());
        }
        let config = resolve(
            file.map(|_| path.as_path()),
            crate::command::Command::Init,
            &flags,
            "n1",
        )
        .expect("config");
        let cluster = config.cluster.expect("cluster");
        (cluster.dns.disabled, cluster.proxy.disabled)
    }

    #[test]
    fn skipped_addon_phases_are_disabled_addons_as_in_kubeadm() {
        assert_eq!(disabled_addons(None, &[]), (false, false));
        assert_eq!(disabled_addons(None, &["addon/kube-proxy"]), (false, true));
        assert_eq!(
            disabled_addons(None, &["preflight", "addon/CoreDNS"]),
            (true, false)
        );
        assert_eq!(disabled_addons(None, &["addon"]), (true, true));
        // kubeadm v1.36 skips nothing for `addon/all` and uploads `dns: {}`, `proxy: {}`.
        assert_eq!(disabled_addons(None, &["addon/all"]), (false, false));
        let file = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
                    localAPIEndpoint: {advertiseAddress: 10.0.0.7}\nskipPhases: [addon/coredns]\n";
        assert_eq!(disabled_addons(Some(file), &[]), (true, false));
        // The flag replaces the file's list, as in kubeadm.
        assert_eq!(disabled_addons(Some(file), &["addon/kube-proxy"]), (false, true));
    }

    fn has_default_route() -> bool {
        std::fs::read_to_string("/proc/net/route")
            .map(|t| {
                t.lines()
                    .skip(1)
                    .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
            })
            .unwrap_or(false)
    }

    #[test]
    fn an_explicit_advertise_address_is_kept() {
        let mut config = init("10.0.0.7");
        assert_eq!(detect_advertise_address(&mut config).expect("ok"), None);
        assert_eq!(config.local_api_endpoint().advertise_address, "10.0.0.7");
    }

    #[test]
    fn an_empty_advertise_address_comes_from_the_default_route() {
        let mut config = init("");
        match detect_advertise_address(&mut config) {
            Ok(Some(ip)) => {
                assert!(has_default_route(), "an address without a default route: {ip}");
                let ip: std::net::IpAddr = ip.parse().expect("an IP");
                assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
                assert_eq!(config.local_api_endpoint().advertise_address, ip.to_string());
            }
            Ok(None) => panic!("an empty address must be filled or refused"),
            Err(e) => {
                assert!(!has_default_route(), "a default route exists, yet: {e}");
                assert!(e.to_string().contains("localAPIEndpoint.advertiseAddress"), "{e}");
            }
        }
    }
}
