//! The work of the `certs` phase, sub-phase by sub-phase.

use kubeadm_pki::kubeadm::{self, CertDef, NodeFacts, validity_period};
use kubeadm_pki::{Certificate, KeyAlgorithm, PkiError, PrivateKey};
use std::collections::BTreeMap;
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};
use wasmadm_plugin_sdk::config::ClusterConfiguration;
use wasmadm_plugin_sdk::files::{self, ErrorCode};
use wasmadm_plugin_sdk::fs;
use wasmadm_plugin_sdk::keys::Keys;
use wasmadm_plugin_sdk::types::{PhaseError, PhaseReport};
use wasmadm_plugin_sdk::{Context, ErrorText, Findings, Result, failed, log, print};

const CERT_MODE: u32 = 0o644;
const KEY_MODE: u32 = 0o600;

/// A CA as later sub-phases see it: its certificate, and its key unless it is external.
/// Kept in memory so that a `--dry-run` (whose writes only go to the plan) still signs leaves
/// with the CA it just made.
struct Ca {
    cert: Certificate,
    key: Option<PrivateKey>,
}

/// The phase's inputs, resolved once.
pub struct Phase<'a> {
    ctx: &'a Context<'a>,
    /// A control-plane join: the CAs exist (downloaded), only this node's certificates are made.
    joining: bool,
    cluster: ClusterConfiguration,
    dir: String,
    validity: Duration,
    ca_validity: Duration,
    now: OffsetDateTime,
    cas: BTreeMap<&'static str, Ca>,
    keys: Keys,
    findings: Findings,
}

fn write(path: &str, contents: &[u8], mode: u32) -> Result {
    files::write(path, contents, mode).map_err(|e| match e.code {
        ErrorCode::Denied => PhaseError::Denied(e.text()),
        _ => failed(format!("failure while saving {path}: {}", e.text())),
    })
}

fn pki(e: PkiError) -> PhaseError {
    failed(e.to_string())
}

pub fn run(ctx: &Context<'_>, joining: bool) -> Result<PhaseReport> {
    let cluster = ctx.cluster_configuration();
    let algorithm: KeyAlgorithm = cluster
        .encryption_algorithm
        .parse()
        .map_err(|e: PkiError| PhaseError::InvalidConfig(format!("encryptionAlgorithm: {e}")))?;
    let mut phase = Phase {
        ctx,
        joining,
        dir: cluster.certificates_dir.trim_end_matches('/').to_string(),
        validity: validity_period(
            "certificateValidityPeriod",
            cluster.certificate_validity_period.as_deref(),
            8760,
        )
        .map_err(PhaseError::InvalidConfig)?,
        ca_validity: validity_period(
            "caCertificateValidityPeriod",
            cluster.ca_certificate_validity_period.as_deref(),
            87600,
        )
        .map_err(PhaseError::InvalidConfig)?,
        now: OffsetDateTime::now_utc(),
        cas: BTreeMap::new(),
        keys: Keys::new(algorithm),
        findings: Findings::default(),
        cluster,
    };
    // kubeadm prints this from the parent `certs` phase, which `init phase certs <one>` skips.
    if ctx.raw.sub_phases.len() > 1 {
        print(&format!("[certs] Using certificateDir folder {:?}", phase.dir));
    }
    let new_keys = phase.new_keys()?;
    phase.keys.prefetch(new_keys)?;
    for sub in &ctx.raw.sub_phases {
        match sub.as_str() {
            "sa" => {
                if joining {
                    print(&format!(
                        "[certs] Valid certificates and keys now exist in {:?}",
                        phase.dir
                    ));
                }
                phase.sa()?
            }
            name => match kubeadm::def(name) {
                // A joining node uses the cluster's CAs as they are; each is loaded (and
                // checked) when a certificate it signs is made.
                Some(def) if def.is_ca() && phase.joining => {}
                Some(def) if def.is_ca() => phase.ca(def)?,
                Some(def) => phase.leaf(def)?,
                None => return Err(failed(format!("unknown sub-phase {name:?} of phase certs"))),
            },
        }
    }
    // The CA's public-key pin, for the join command printed at the end of init.
    if let Some(ca) = phase.cas.get("ca") {
        let pin = ca.cert.spki_pin().map_err(pki)?;
        phase.findings.output("ca-cert-hash", pin);
    }
    Ok(phase.findings.into_report())
}

impl Phase<'_> {
    fn path(&self, base: &str, ext: &str) -> String {
        format!("{}/{base}.{ext}", self.dir)
    }

    /// How many of the selected sub-phases will make a new key: those whose files are both
    /// absent (and, for `sa`, when the CA is not external). The host makes them in one call.
    fn new_keys(&self) -> Result<usize> {
        let absent = |base: &str, ext: &str| -> Result<bool> { Ok(!fs::exists(&self.path(base, ext))?) };
        let mut count = 0;
        for sub in &self.ctx.raw.sub_phases {
            let needs = match sub.as_str() {
                "sa" => {
                    let external_ca = absent("ca", "key")? && !absent("ca", "crt")?;
                    absent("sa", "key")? && !external_ca
                }
                name => match kubeadm::def(name) {
                    Some(def) if self.external_etcd() && def.is_etcd() => false,
                    Some(def) => absent(def.base_name, "crt")? && absent(def.base_name, "key")?,
                    None => false,
                },
            };
            count += usize::from(needs);
        }
        Ok(count)
    }

    fn external_etcd(&self) -> bool {
        self.cluster.etcd.external.is_some()
    }

    /// Loads `<base>.crt`: `None` when absent, an error naming the file when unreadable.
    fn load_cert(&self, def: &CertDef) -> Result<Option<Certificate>> {
        let path = self.path(def.base_name, "crt");
        match fs::read_optional(&path)? {
            None => Ok(None),
            Some(bytes) => Certificate::from_pem(&bytes).map(Some).map_err(|e| {
                failed(format!(
                    "failure loading {} certificate: couldn't load the certificate file {path}: {e}",
                    def.base_name
                ))
            }),
        }
    }

    /// Loads `<base>.key`: `None` when absent, an error naming the file when unreadable.
    fn load_key(&self, base: &str) -> Result<Option<PrivateKey>> {
        let path = self.path(base, "key");
        match fs::read_optional(&path)? {
            None => Ok(None),
            Some(bytes) => PrivateKey::from_pem(&bytes).map(Some).map_err(|e| {
                failed(format!(
                    "failure loading {base} key: couldn't load the private key file {path}: {e}"
                ))
            }),
        }
    }

    /// An expired certificate is not reused: kubeadm would only warn, and then start a control
    /// plane that cannot work. A not-yet-valid one is a clock problem and only warned about.
    fn check_period(&self, base: &str, cert: &Certificate) -> Result {
        match cert.check_period(self.now) {
            Ok(()) => Ok(()),
            Err(PkiError::NotYetValid(m)) => {
                log::log(
                    log::Level::Warn,
                    &format!("WARNING: could not validate bounds for certificate {base}: {m}"),
                );
                Ok(())
            }
            Err(e) => Err(failed(format!(
                "certificate {base} ({}) cannot be used: {e}; renew it (kubeadm certs renew) or remove it",
                self.path(base, "crt")
            ))),
        }
    }

    fn ca(&mut self, def: &'static CertDef) -> Result {
        if self.external_etcd() && def.is_etcd() {
            print(&format!(
                "[certs] External etcd mode: Skipping {} certificate authority generation",
                def.base_name
            ));
            return Ok(());
        }
        let cert = self.load_cert(def)?;
        let key = self.load_key(def.base_name)?;
        let base = def.base_name;
        match (cert, key) {
            (Some(cert), key) => {
                self.check_period(base, &cert)?;
                if !cert.is_ca().map_err(pki)? {
                    return Err(failed(format!(
                        "certificate {base} is not a CA ({})",
                        self.path(base, "crt")
                    )));
                }
                match &key {
                    Some(k) => {
                        if !cert.matches_key(k).map_err(pki)? {
                            return Err(failed(format!(
                                "the private key {} does not match the certificate {}",
                                self.path(base, "key"),
                                self.path(base, "crt")
                            )));
                        }
                        print(&format!("[certs] Using existing {base} certificate authority"));
                    }
                    None => print(&format!(
                        "[certs] Using existing {base} keyless certificate authority"
                    )),
                }
                self.cas.insert(def.name, Ca { cert, key });
            }
            (None, Some(_)) => {
                let path = self.path(base, "crt");
                return Err(failed(format!(
                    "failure loading {base} certificate: couldn't load the certificate file {path}: the key {} exists without it",
                    self.path(base, "key")
                )));
            }
            (None, None) => {
                let key = self.keys.new_key()?;
                let cn = match def.common_name {
                    kubeadm::CommonName::Fixed(cn) => cn,
                    kubeadm::CommonName::NodeName => "",
                };
                let cert = Certificate::new_ca(cn, &key, self.ca_validity, self.now).map_err(pki)?;
                print(&format!("[certs] Generating {base:?} certificate and key"));
                self.write_pair(base, &cert, &key)?;
                self.cas.insert(def.name, Ca { cert, key: Some(key) });
            }
        }
        Ok(())
    }

    fn write_pair(&self, base: &str, cert: &Certificate, key: &PrivateKey) -> Result {
        // The key first: a crash in between leaves a key without a certificate, which the next
        // run reports, rather than a certificate whose key is lost.
        write(
            &self.path(base, "key"),
            key.to_pem().map_err(pki)?.as_bytes(),
            KEY_MODE,
        )?;
        write(&self.path(base, "crt"), cert.to_pem().as_bytes(), CERT_MODE)
    }

    /// The issuing CA, from this run or from disk (for `init phase certs <leaf>`).
    fn ensure_issuer(&mut self, def: &CertDef) -> Result {
        let ca_name = def.ca.unwrap_or_default();
        if !self.cas.contains_key(ca_name) {
            let ca_def = kubeadm::def(ca_name).ok_or_else(|| failed(format!("unknown CA {ca_name}")))?;
            let cert = self.load_cert(ca_def)?.ok_or_else(|| {
                failed(format!(
                    "couldn't load CA certificate {ca_name}: couldn't load the certificate file {}: no such file",
                    self.path(ca_def.base_name, "crt")
                ))
            })?;
            self.check_period(ca_def.base_name, &cert)?;
            let key = self.load_key(ca_def.base_name)?;
            self.cas.insert(ca_def.name, Ca { cert, key });
        }
        Ok(())
    }

    fn leaf(&mut self, def: &'static CertDef) -> Result {
        let base = def.base_name;
        if self.external_etcd() && def.is_etcd() {
            print(&format!(
                "[certs] External etcd mode: Skipping {base} certificate generation"
            ));
            return Ok(());
        }
        let facts_name = self.ctx.node_name();
        // Only the serving certificates carry the node's address.
        let advertise = match def.name {
            "apiserver" | "etcd-server" | "etcd-peer" => self.advertise_address()?,
            _ => None,
        };
        let (spec, warnings) = kubeadm::leaf_spec(
            def,
            &NodeFacts {
                node_name: &facts_name,
                advertise_address: advertise,
                cluster: &self.cluster,
            },
        )
        .map_err(PhaseError::InvalidConfig)?;
        for w in warnings {
            log::log(log::Level::Warn, &w);
        }
        let cert = self.load_cert(def)?;
        let key = self.load_key(base)?;
        let ca_base = def
            .ca
            .and_then(kubeadm::def)
            .map(|d| d.base_name)
            .unwrap_or_default();
        let crt_path = self.path(base, "crt");
        let key_path = self.path(base, "key");
        let now = self.now;
        let validity = self.validity;
        self.ensure_issuer(def)?;
        let ca = self
            .cas
            .get(def.ca.unwrap_or_default())
            .ok_or_else(|| failed(format!("the CA of {base} is not available")))?;
        match (cert, key) {
            (Some(cert), Some(key)) => {
                self.check_period(base, &cert)?;
                cert.verify_signed_by(&ca.cert).map_err(|e| {
                    failed(format!(
                        "[certs] certificate {base} not signed by CA certificate {ca_base}: {e} ({crt_path})"
                    ))
                })?;
                if !cert.matches_key(&key).map_err(pki)? {
                    return Err(failed(format!(
                        "the private key {key_path} does not match the certificate {crt_path}"
                    )));
                }
                cert.check_covers(&spec)
                    .map_err(|e| failed(format!("certificate {base} is invalid, error: {e} ({crt_path})")))?;
                print(&format!(
                    "[certs] Using existing {base} certificate and key on disk"
                ));
                Ok(())
            }
            (Some(_), None) => Err(failed(format!(
                "failure loading {base} key: couldn't load the private key file {key_path}: no such file"
            ))),
            (None, Some(_)) => Err(failed(format!(
                "failure loading {base} certificate: couldn't load the certificate file {crt_path}: no such file (the key {key_path} exists without it)"
            ))),
            (None, None) => {
                let ca_key = ca.key.as_ref().ok_or_else(|| {
                    failed(format!(
                        "couldn't create {base}: the {ca_base} certificate authority is external (no {}), so {crt_path} must be provided",
                        format_args!("{}/{ca_base}.key", self.dir)
                    ))
                })?;
                let key = self.keys.new_key()?;
                let cert = Certificate::new_signed(&spec, &key.public_key(), &ca.cert, ca_key, validity, now)
                    .map_err(pki)?;
                print(&format!("[certs] Generating {base:?} certificate and key"));
                self.write_pair(base, &cert, &key)?;
                if spec.has_server_auth() {
                    let ips: Vec<String> = spec.ips.iter().map(IpAddr::to_string).collect();
                    print(&format!(
                        "[certs] {base} serving cert is signed for DNS names [{}] and IPs [{}]",
                        spec.dns_names.join(" "),
                        ips.join(" ")
                    ));
                }
                Ok(())
            }
        }
    }

    /// The node's advertise address. kubeadm detects one when the configuration has none; the
    /// sandbox cannot, so the certificates then go without it and a warning says so.
    fn advertise_address(&self) -> Result<Option<IpAddr>> {
        let config = &self.ctx.config;
        let text = config
            .init
            .as_ref()
            .map(|i| i.local_api_endpoint.advertise_address.clone())
            .or_else(|| {
                config
                    .join
                    .as_ref()
                    .and_then(|j| j.control_plane.as_ref())
                    .map(|c| c.local_api_endpoint.advertise_address.clone())
            })
            .unwrap_or_default();
        if text.is_empty() {
            log::log(
                log::Level::Warn,
                "localAPIEndpoint.advertiseAddress is not set: the serving certificates will not include the node's IP",
            );
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            PhaseError::InvalidConfig(format!(
                "localAPIEndpoint.advertiseAddress: {text:?} is not an IP address"
            ))
        })
    }

    /// The service-account signing key pair. Like kubeadm, an existing `sa.key` that parses is
    /// reused as it is; `sa.pub` is (re)written only with a new key.
    fn sa(&mut self) -> Result {
        let external = self.cas.get("ca").is_some_and(|ca| ca.key.is_none());
        if external {
            print("[certs] Using existing sa keys");
            return Ok(());
        }
        let key_path = self.path("sa", "key");
        match fs::read_optional(&key_path)? {
            Some(bytes) => {
                PrivateKey::from_pem(&bytes).map_err(|e| {
                    failed(format!(
                        "file {key_path} existed but it could not be loaded properly: {e}"
                    ))
                })?;
                print("[certs] Using the existing \"sa\" key");
            }
            None => {
                let key = self.keys.new_key()?;
                print("[certs] Generating \"sa\" key and public key");
                write(&key_path, key.to_pem().map_err(pki)?.as_bytes(), KEY_MODE)?;
                // kubeadm writes sa.pub with mode 0600 too (see the reference `_modes.txt`).
                let pubkey = key.public_key().to_pem().map_err(pki)?;
                write(&self.path("sa", "pub"), pubkey.as_bytes(), KEY_MODE)?;
            }
        }
        Ok(())
    }
}
