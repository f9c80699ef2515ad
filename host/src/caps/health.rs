//! The `health` capability: `GET` on exactly the health URLs a phase's grant lists, over a plain
//! `TcpStream` (HTTP/1.1, `Connection: close`) or rustls, with a per-request timeout and a capped
//! body. The URL is checked against the grant before any name lookup or connection.
//!
//! The host is synchronous, and a health check is one small request: a minimal client here is
//! smaller and easier to audit than a general HTTP stack, and rustls is already in the tree.

use super::path;
use super::plan::{Plan, PlanEntry};
use crate::bindings::wasmadm::plugin::health::{HealthError, Origin, Response};
use crate::grants::{HealthEndpoint, Tls};
use crate::values::{NodePath, Url};
use cap_std::fs::Dir;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most of a body the host keeps.
pub const MAX_BODY: usize = 64 << 10;
/// The most the host reads of status line and headers.
const MAX_HEAD: usize = 16 << 10;
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
            exchange(&url, tls, deadline).map_err(|e| classify(e, &format!("GET {url}"), timeout))?;
        parse_response(&raw, truncated).map_err(|m| HealthError::Other(format!("GET {url}: {m}")))
    }

    fn tls_config(&self, tls: &Tls, url: &Url) -> Result<Arc<rustls::ClientConfig>, HealthError> {
        let builder = client_builder().map_err(|e| HealthError::Tls(format!("GET {url}: {e}")))?;
        let config = match tls {
            Tls::Verify(ca) => {
                let pem = read_node_file(&self.root, ca, 1 << 20)
                    .map_err(|e| HealthError::Tls(format!("cannot read CA file {ca}: {e}")))?;
                let roots = root_store(&pem, ca, url).map_err(HealthError::Tls)?;
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            _ => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(
                    rustls::crypto::ring::default_provider().into(),
                )))
                .with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// A rustls client configuration builder with the ring provider and safe protocol versions.
pub(super) fn client_builder()
-> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, rustls::Error> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
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

/// Connects, sends the `GET` and reads the answer until the server closes or the cap is hit.
fn exchange(
    url: &Url,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
) -> io::Result<(Vec<u8>, bool)> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: wasmadm\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path,
        host_header(url)
    );
    send(url, tls, request.as_bytes(), deadline)
}

/// The `Host` header of a request to `url`.
pub(super) fn host_header(url: &Url) -> String {
    if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    }
}

/// Connects to `url`'s host (over TLS when `tls` is given), sends `request` (a whole HTTP/1.1
/// request with `Connection: close`) and reads the answer until the server closes or the cap is
/// hit, all before `deadline`.
pub(super) fn send(
    url: &Url,
    tls: Option<Arc<rustls::ClientConfig>>,
    request: &[u8],
    deadline: Instant,
) -> io::Result<(Vec<u8>, bool)> {
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let tcp = tcp.ok_or(last)?;
    match tls {
        None => read_all(tcp, request, deadline),
        Some(config) => {
            let name = match url.host.parse::<IpAddr>() {
                Ok(ip) => ServerName::IpAddress(ip.into()),
                Err(_) => ServerName::try_from(url.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            };
            let mut conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
            let mut tcp = tcp;
            handshake(&mut conn, &mut tcp, deadline)?;
            let stream = rustls::StreamOwned::new(conn, tcp);
            read_all(stream, request, deadline)
        }
    }
}

/// Completes the TLS handshake by `deadline` (each read and write bounded by the time left, which
/// rustls's own `complete_io` would not do). A refused certificate is reported to the server with
/// rustls's alert before the error is returned.
fn handshake(conn: &mut rustls::ClientConnection, tcp: &mut TcpStream, deadline: Instant) -> io::Result<()> {
    while conn.is_handshaking() {
        tcp.set_write_timeout(Some(remaining(deadline)?))?;
        while conn.wants_write() {
            conn.write_tls(tcp)?;
        }
        if !conn.is_handshaking() {
            break;
        }
        tcp.set_read_timeout(Some(remaining(deadline)?))?;
        if conn.read_tls(tcp)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the TLS handshake",
            ));
        }
        if let Err(e) = conn.process_new_packets() {
            // Best effort: the alert tells the server why.
            let _ = conn.write_tls(tcp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
    Ok(())
}

/// The socket under a stream, to set its timeouts.
trait Socket: Read + Write {
    fn tcp(&self) -> &TcpStream;
}
impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}
impl Socket for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref()
    }
}

fn read_all(mut stream: impl Socket, request: &[u8], deadline: Instant) -> io::Result<(Vec<u8>, bool)> {
    stream.tcp().set_write_timeout(Some(remaining(deadline)?))?;
    stream.write_all(request)?;
    stream.flush()?;
    let cap = MAX_HEAD + MAX_BODY;
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        stream.tcp().set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok((data, false)),
            Ok(n) => {
                data.extend_from_slice(&buf[..n]);
                if data.len() >= cap {
                    data.truncate(cap);
                    return Ok((data, true));
                }
            }
            // A server that closes without TLS close_notify has still sent its whole answer.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !data.is_empty() => {
                return Ok((data, false));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
    } else {
        Ok(left)
    }
}

/// Maps an I/O error of `request` (e.g. `GET <url>`) to the WIT error kinds.
pub(super) fn classify(e: io::Error, request: &str, timeout: Duration) -> HealthError {
    use io::ErrorKind as K;
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
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

/// Parses an HTTP/1.x answer: status, then a body framed by `Content-Length`, chunks, or close.
pub(super) fn parse_response(raw: &[u8], cut: bool) -> Result<Response, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no complete HTTP header")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("the answer is not HTTP/1.x: {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let rest = &raw[end + 4..];
    let (mut body, mut truncated) =
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            dechunk(rest)
        } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            (rest[..len.min(rest.len())].to_vec(), len > rest.len())
        } else {
            (rest.to_vec(), cut)
        };
    if body.len() > MAX_BODY {
        body.truncate(MAX_BODY);
        truncated = true;
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        truncated,
        origin: Origin::Network,
    })
}

/// Decodes a chunked body; `true` when it stops before the last chunk.
fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return (out, true);
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            return (out, true);
        };
        if size == 0 {
            return (out, false);
        }
        data = &data[eol + 2..];
        if data.len() < size {
            out.extend_from_slice(data);
            return (out, true);
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// Accepts any server certificate (still checking the handshake signatures), for the grants that
/// say `tls: insecure`.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_sized_bodies_are_decoded() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            false,
        )
        .expect("chunked");
        assert_eq!((r.status, r.body.as_str(), r.truncated), (200, "ok", false));
        let r = parse_response(
            b"HTTP/1.1 500 Internal\r\nContent-Length: 3\r\n\r\nbadextra",
            false,
        )
        .expect("sized");
        assert_eq!((r.status, r.body.as_str()), (500, "bad"));
        assert!(parse_response(b"SSH-2.0\r\n\r\n", false).is_err());
    }
}
