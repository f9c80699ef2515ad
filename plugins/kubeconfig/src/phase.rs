//! The work of the `kubeconfig` phase, file by file.

use crate::file::{self, Kubeconfig};
use crate::{Endpoint, FILES, FileDef, KUBECONFIG_DIR, path};
use kubeadm_pki::kubeadm::validity_period;
use kubeadm_pki::{CertSpec, Certificate, KeyAlgorithm, PkiError, PrivateKey, Usage};
use time::{Duration, OffsetDateTime};
use wasmadm_plugin_sdk::config::{ClusterConfiguration, control_plane_url, join_host_port};
use wasmadm_plugin_sdk::files::{self, ErrorCode};
use wasmadm_plugin_sdk::fs;
use wasmadm_plugin_sdk::keys::Keys;
use wasmadm_plugin_sdk::types::{PhaseError, PhaseReport};
use wasmadm_plugin_sdk::{Context, ErrorText, Result, done, failed, log, print};

/// kubeconfig files hold client keys (kubeadm writes them 0600).
const MODE: u32 = 0o600;

fn pki(e: PkiError) -> PhaseError {
    failed(e.to_string())
}

/// The phase's inputs, resolved once.
struct Phase {
    cluster: ClusterConfiguration,
    node_name: String,
    keys: Keys,
    validity: Duration,
    now: OffsetDateTime,
    ca: Certificate,
    /// `None` with an external CA.
    ca_key: Option<PrivateKey>,
    /// `https://advertiseAddress:bindPort`, or the reason there is none.
    local_url: std::result::Result<String, String>,
    bind_port: u16,
}

/// The files a joining control plane writes (kubeadm's `control-plane-prepare/kubeconfig`): no
/// super-admin (only the first control plane has one), no kubelet (its TLS bootstrap makes it).
const JOIN_FILES: [&str; 3] = ["admin", "controller-manager", "scheduler"];

pub fn run(ctx: &Context<'_>, joining: bool) -> Result<PhaseReport> {
    let subs: Vec<&String> = ctx
        .raw
        .sub_phases
        .iter()
        .filter(|s| !joining || JOIN_FILES.contains(&s.as_str()))
        .collect();
    let cluster = ctx.cluster_configuration();
    let algorithm: KeyAlgorithm = cluster
        .encryption_algorithm
        .parse()
        .map_err(|e: PkiError| PhaseError::InvalidConfig(format!("encryptionAlgorithm: {e}")))?;
    let validity = validity_period(
        "certificateValidityPeriod",
        cluster.certificate_validity_period.as_deref(),
        8760,
    )
    .map_err(PhaseError::InvalidConfig)?;
    let endpoint = ctx.config.local_api_endpoint();
    let (advertise, bind_port) = (endpoint.advertise_address, endpoint.bind_port);
    let local_url = if advertise.is_empty() {
        // kubeadm would detect the default route's address; the sandbox cannot, and a guessed
        // server would give files that fail TLS against the apiserver certificate.
        Err("localAPIEndpoint.advertiseAddress is not set: wasmadm cannot detect this node's address, so set it in the InitConfiguration".to_string())
    } else {
        Ok(format!("https://{}", join_host_port(&advertise, bind_port)))
    };
    // kubeadm prints this from the parent `kubeconfig` phase, which `init phase kubeconfig <one>`
    // skips.
    if joining {
        print("[kubeconfig] Generating kubeconfig files");
    }
    if subs.len() > 1 {
        print(&format!(
            "[kubeconfig] Using kubeconfig folder {KUBECONFIG_DIR:?}"
        ));
    }
    let dir = cluster.certificates_dir.trim_end_matches('/').to_string();
    let (ca, ca_key) = load_ca(&dir)?;
    let mut keys = Keys::new(algorithm);
    // One client key per file this run writes (an existing file is kept, an external CA makes none).
    if ca_key.is_some() {
        let mut new_files = 0;
        for sub in &subs {
            if let Some(def) = FILES.iter().find(|f| f.name == **sub) {
                new_files += usize::from(!fs::exists(&path(def))?);
            }
        }
        keys.prefetch(new_files)?;
    }
    let mut phase = Phase {
        node_name: ctx.node_name(),
        keys,
        validity,
        now: OffsetDateTime::now_utc(),
        ca,
        ca_key,
        local_url,
        bind_port,
        cluster,
    };
    for sub in subs {
        let def = FILES
            .iter()
            .find(|f| f.name == *sub)
            .ok_or_else(|| failed(format!("unknown sub-phase {sub:?} of phase kubeconfig")))?;
        phase.file(def)?;
    }
    Ok(done())
}

/// The cluster CA; its key is `None` when it is external.
fn load_ca(dir: &str) -> Result<(Certificate, Option<PrivateKey>)> {
    let prefix = "couldn't create a kubeconfig; the CA files couldn't be loaded";
    let crt = format!("{dir}/ca.crt");
    let key = format!("{dir}/ca.key");
    let bytes = fs::read_optional(&crt)?.ok_or_else(|| {
        failed(format!(
            "{prefix}: failure loading ca certificate: couldn't load the certificate file {crt}: no such file"
        ))
    })?;
    let cert = Certificate::from_pem(&bytes).map_err(|e| {
        failed(format!(
            "{prefix}: failure loading ca certificate: couldn't load the certificate file {crt}: {e}"
        ))
    })?;
    if !cert.is_ca().map_err(pki)? {
        return Err(failed(format!("{prefix}: certificate ca is not a CA ({crt})")));
    }
    let ca_key = match fs::read_optional(&key)? {
        None => None,
        Some(bytes) => {
            let k = PrivateKey::from_pem(&bytes).map_err(|e| {
                failed(format!(
                    "{prefix}: failure loading ca key: couldn't load the private key file {key}: {e}"
                ))
            })?;
            if !cert.matches_key(&k).map_err(pki)? {
                return Err(failed(format!(
                    "{prefix}: the private key {key} does not match the certificate {crt}"
                )));
            }
            Some(k)
        }
    };
    Ok((cert, ca_key))
}

impl Phase {
    fn server(&self, def: &FileDef) -> Result<String> {
        let cpe = &self.cluster.control_plane_endpoint;
        if def.endpoint == Endpoint::ControlPlane && !cpe.is_empty() {
            return control_plane_url(cpe, self.bind_port).map_err(PhaseError::InvalidConfig);
        }
        self.local_url.clone().map_err(PhaseError::InvalidConfig)
    }

    fn spec(&self, def: &FileDef) -> CertSpec {
        CertSpec {
            common_name: match def.common_name {
                Some(cn) => cn.to_string(),
                None => format!("system:node:{}", self.node_name),
            },
            organizations: def.organizations.iter().map(|o| o.to_string()).collect(),
            usages: vec![Usage::ClientAuth],
            ..CertSpec::default()
        }
    }

    fn file(&mut self, def: &FileDef) -> Result {
        let path = path(def);
        let server = self.server(def)?;
        let existing = fs::read_optional(&path)?;
        let new_key = match (&existing, &self.ca_key) {
            (None, Some(_)) => Some(self.keys.new_key()?),
            _ => None,
        };
        match (existing, &self.ca_key) {
            (Some(bytes), key) => {
                let checked = self.validate(&path, &bytes, &server);
                if key.is_none() {
                    checked.map_err(|e| {
                        failed(format!(
                            "the {} file does not exists or it is not valid: {e}",
                            def.file
                        ))
                    })?;
                    print(&format!(
                        "[kubeconfig] External CA mode: Using user provided {}",
                        def.file
                    ));
                } else {
                    checked.map_err(failed)?;
                    // kubeadm's wording: a file with the same CA and server is taken as equal.
                    print(&format!("[kubeconfig] Using existing kubeconfig file: {path:?}"));
                }
                Ok(())
            }
            (None, None) => Err(failed(format!(
                "the {} file does not exists or it is not valid: the ca certificate authority is external (no {}/ca.key), so {path} must be provided",
                def.file,
                self.cluster.certificates_dir.trim_end_matches('/'),
            ))),
            (None, Some(ca_key)) => {
                let spec = self.spec(def);
                let key = new_key.ok_or_else(|| failed("no key was made for a new kubeconfig file"))?;
                let cert = Certificate::new_signed(
                    &spec,
                    &key.public_key(),
                    &self.ca,
                    ca_key,
                    self.validity,
                    self.now,
                )
                .map_err(pki)?;
                let text = file::render(&Kubeconfig {
                    cluster_name: self.cluster.cluster_name.clone(),
                    server,
                    user: spec.common_name,
                    ca_pem: self.ca.to_pem().into_bytes(),
                    client_cert_pem: cert.to_pem().into_bytes(),
                    client_key_pem: key.to_pem().map_err(pki)?.into_bytes(),
                });
                print(&format!("[kubeconfig] Writing {:?} kubeconfig file", def.file));
                files::write(&path, text.as_bytes(), MODE).map_err(|e| match e.code {
                    ErrorCode::Denied => PhaseError::Denied(e.text()),
                    _ => failed(format!(
                        "failed to save kubeconfig file {path} on disk: {}",
                        e.text()
                    )),
                })
            }
        }
    }

    /// kubeadm's `validateKubeConfig` (same CA, same server), plus the embedded client
    /// certificate: signed by this CA, in its validity period, and matching its key, so that a
    /// reused file is one that works.
    fn validate(&self, path: &str, bytes: &[u8], server: &str) -> std::result::Result<(), String> {
        let existing = file::parse(bytes)
            .map_err(|e| format!("failed to load kubeconfig file {path} that already exists on disk: {e}"))?;
        let ca = Certificate::from_pem(&existing.ca_pem)
            .map_err(|e| format!("the kubeconfig file {path:?} contains an invalid CA cert: {e}"))?;
        if ca.der() != self.ca.der() {
            return Err(format!(
                "a kubeconfig file {path:?} exists already but has an unexpected CA cert"
            ));
        }
        if existing.server != server {
            // kubeadm only warns here; a file that talks to another API server is not this
            // cluster's, and reusing it would fail later and far from the cause.
            return Err(format!(
                "a kubeconfig file {path:?} exists already but has an unexpected API Server URL: expected: {server}, got: {}",
                existing.server
            ));
        }
        let bad_client = |e: String| {
            format!("a kubeconfig file {path:?} exists already but its client certificate is not valid: {e}")
        };
        match (&existing.client_cert_pem, &existing.client_key_pem) {
            (Some(cert), Some(key)) => {
                let cert = Certificate::from_pem(cert).map_err(|e| bad_client(e.to_string()))?;
                let key = PrivateKey::from_pem(key).map_err(|e| bad_client(e.to_string()))?;
                cert.verify_signed_by(&self.ca)
                    .map_err(|e| bad_client(format!("not signed by the cluster CA: {e}")))?;
                match cert.check_period(self.now) {
                    Ok(()) => {}
                    Err(PkiError::NotYetValid(m)) => log::log(
                        log::Level::Warn,
                        &format!(
                            "WARNING: could not validate bounds for the client certificate of {path}: {m}"
                        ),
                    ),
                    Err(e) => return Err(bad_client(e.to_string())),
                }
                if !cert.matches_key(&key).map_err(|e| bad_client(e.to_string()))? {
                    return Err(bad_client(
                        "the client key does not match the client certificate".into(),
                    ));
                }
                Ok(())
            }
            (Some(_), None) => Err(bad_client("client-key-data is missing".into())),
            // Credentials kept elsewhere (kubelet's rotating certificate file, a token) are
            // not ours to check, as in kubeadm.
            (None, _) => Ok(()),
        }
    }
}
