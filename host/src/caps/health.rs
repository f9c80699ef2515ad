//! The `health` capability: `GET` on exactly the health URLs a phase's grant lists, through the
//! host's minimal client ([`crate::http`]), with a per-request timeout and a capped body. The URL
//! is checked against the grant before any name lookup or connection.

use super::path;
use super::plan::{Plan, PlanEntry};
use crate::bindings::wasmadm::plugin::health::{HealthError, Origin, Response};
use crate::grants::{HealthEndpoint, Tls};
use crate::http;
use crate::values::{NodePath, Url};
use cap_std::fs::Dir;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};
/// The longest timeout a plugin may ask for one request.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Where answers come from in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Real requests.
    Network,
    /// The in-memory cluster: the simulated node answers `200 ok`, nothing is sent.
    Simulated,
    /// `--dry-run`: recorded in the plan, nothing is sent.
    DryRun,
}

/// The health capability of one phase.
pub struct HealthCap {
    phase: String,
    endpoints: Vec<HealthEndpoint>,
    root: Arc<Dir>,
    mode: Mode,
    plan: Plan,
}

impl HealthCap {
    pub fn new(phase: &str, endpoints: Vec<HealthEndpoint>, root: Arc<Dir>, mode: Mode, plan: Plan) -> Self {
        Self {
            phase: phase.to_string(),
            endpoints,
            root,
            mode,
            plan,
        }
    }

    /// The grant that covers `url`, or a denial listing what is granted.
    fn authorize(&self, url: &str) -> Result<(&HealthEndpoint, Url), HealthError> {
        let parsed = Url::parse(url, false).map_err(HealthError::Other)?;
        self.endpoints
            .iter()
            .find(|e| e.url == parsed)
            .map(|e| (e, parsed.clone()))
            .ok_or_else(|| {
                let granted: Vec<String> = self.endpoints.iter().map(|e| e.url.to_string()).collect();
                HealthError::Denied(format!(
                    "health: phase {:?} may not GET {parsed}: it is not on its grant ({}); add it under \
                     grants.health in the pipeline file if the phase should check it",
                    self.phase,
                    if granted.is_empty() {
                        "empty".to_string()
                    } else {
                        granted.join(", ")
                    }
                ))
            })
    }

    pub fn get(&self, url: &str, timeout_ms: u32) -> Result<Response, HealthError> {
        let (endpoint, url) = self.authorize(url)?;
        let empty = |status, origin| Response {
            status,
            body: if status == 200 { "ok".into() } else { String::new() },
            truncated: false,
            origin,
        };
        match self.mode {
            Mode::DryRun => {
                self.plan.record(PlanEntry::Health {
                    phase: self.phase.clone(),
                    url: url.to_string(),
                });
                return Ok(empty(0, Origin::Recorded));
            }
            Mode::Simulated => return Ok(empty(200, Origin::Simulated)),
            Mode::Network => {}
        }
        let timeout =
            crate::deadline::bound(Duration::from_millis(u64::from(timeout_ms.max(1))).min(MAX_TIMEOUT));
        let deadline = Instant::now() + timeout;
        let tls = match &endpoint.tls {
            Tls::None => None,
            other => Some(self.tls_config(other, &url)?),
        };
        let (raw, truncated) =
            http::get(&url, tls, deadline).map_err(|e| classify(e, &format!("GET {url}"), timeout))?;
        let answer = http::parse_response(&raw, truncated)
            .map_err(|m| HealthError::Other(format!("GET {url}: {m}")))?;
        Ok(Response {
            status: answer.status,
            body: answer.body,
            truncated: answer.truncated,
            origin: Origin::Network,
        })
    }

    fn tls_config(&self, tls: &Tls, url: &Url) -> Result<Arc<rustls::ClientConfig>, HealthError> {
        let builder = http::client_builder().map_err(|e| HealthError::Tls(format!("GET {url}: {e}")))?;
        let config = match tls {
            Tls::Verify(ca) => {
                let pem = read_node_file(&self.root, ca, 1 << 20)
                    .map_err(|e| HealthError::Tls(format!("cannot read CA file {ca}: {e}")))?;
                let roots = root_store(&pem, ca, url).map_err(HealthError::Tls)?;
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            _ => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(http::NoVerify(
                    rustls::crypto::ring::default_provider().into(),
                )))
                .with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// The certificates of CA file `ca` (its PEM text), for `url`; an error names the file.
pub(super) fn root_store(pem: &[u8], ca: &NodePath, url: &Url) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("CA file {ca} for {url} is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("CA file {ca} for {url} has an unusable certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("CA file {ca} for {url} holds no certificate"));
    }
    Ok(roots)
}

/// Reads at most `limit` bytes of a regular node file under the root, without following links out
/// of it.
pub(super) fn read_node_file(root: &Dir, file: &NodePath, limit: u64) -> io::Result<Vec<u8>> {
    let resolved = path::resolve(root, file.as_str(), true)?;
    let mut data = Vec::new();
    path::open_regular(root, &resolved)?
        .take(limit)
        .read_to_end(&mut data)?;
    Ok(data)
}

/// Maps an I/O error of `request` (e.g. `GET <url>`) to the WIT error kinds.
pub(super) fn classify(e: io::Error, request: &str, timeout: Duration) -> HealthError {
    use io::ErrorKind as K;
    if let Some(tls) = http::tls_cause(&e) {
        return HealthError::Tls(format!("{request}: TLS: {tls}"));
    }
    match e.kind() {
        K::ConnectionRefused => HealthError::Refused(format!("{request}: connection refused")),
        K::TimedOut | K::WouldBlock => HealthError::TimedOut(format!(
            "{request}: no complete answer within {}ms",
            timeout.as_millis()
        )),
        K::NotFound | K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
            HealthError::Unreachable(format!("{request}: {e}"))
        }
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof => {
            HealthError::Other(format!("{request}: the connection was closed early: {e}"))
        }
        _ => HealthError::Other(format!("{request}: {e}")),
    }
}
