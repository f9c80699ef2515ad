//! A minimal HTTP/1.1 client for the host's own small requests (the `health` and `etcd`
//! capabilities, a discovery file named by URL): a plain `TcpStream` or rustls, `Connection: close`,
//! every read, write and the TLS handshake bounded by one deadline, the answer capped.
//!
//! The host is synchronous and its requests are few and small: this is smaller and easier to
//! audit than a general HTTP stack, and rustls is already in the tree.

use crate::values::Url;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most of a body the host keeps.
pub const MAX_BODY: usize = 64 << 10;
/// The most the host reads of status line and headers.
const MAX_HEAD: usize = 16 << 10;

/// An answer: its status and its body (cut at [`MAX_BODY`] when `truncated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
    pub truncated: bool,
}

/// Where [`system_roots`] looks, for error messages.
pub const TRUST_STORE_HINT: &str = "the file $SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt (or \
    another distribution's bundle), and the files of $SSL_CERT_DIR or /etc/ssl/certs, under the node root";

/// The bundles Go (and so kubeadm) reads on Linux, the first that exists.
const CERT_FILES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];
/// The directories Go reads every file of.
const CERT_DIRS: [&str; 2] = ["/etc/ssl/certs", "/etc/pki/tls/certs"];
/// The most of one trust-store file the host reads.
const MAX_TRUST_FILE: u64 = 8 << 20;

/// The node's trust store as Go's `crypto/x509` reads it on Linux (kubeadm with `--rootfs` reads
/// it inside the node root, and so does wasmadm with `--root`): the first bundle of `CERT_FILES`
/// (or `$SSL_CERT_FILE` alone) and every file of `CERT_DIRS` (or the `:`-separated
/// `$SSL_CERT_DIR`), each path under `root`. What does not parse is passed over, as Go does.
pub fn system_roots(root: &Path) -> Result<rustls::RootCertStore, String> {
    let under_root = |path: &str| root.join(path.trim_start_matches('/'));
    let read = |path: &Path| -> Option<Vec<u8>> {
        let file = std::fs::File::open(path).ok()?;
        let mut data = Vec::new();
        file.take(MAX_TRUST_FILE).read_to_end(&mut data).ok()?;
        Some(data)
    };
    let mut roots = rustls::RootCertStore::empty();
    let mut add = |pem: &[u8]| {
        let certs = CertificateDer::pem_slice_iter(pem).filter_map(Result::ok);
        roots.add_parsable_certificates(certs);
    };
    let files = match std::env::var("SSL_CERT_FILE") {
        Ok(file) if !file.is_empty() => vec![file],
        _ => CERT_FILES.iter().map(|f| f.to_string()).collect(),
    };
    if let Some(pem) = files.iter().find_map(|f| read(&under_root(f))) {
        add(&pem);
    }
    let dirs = match std::env::var("SSL_CERT_DIR") {
        Ok(dirs) if !dirs.is_empty() => dirs.split(':').map(str::to_string).collect(),
        _ => CERT_DIRS.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
    };
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(under_root(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Some(pem) = read(&entry.path()) {
                add(&pem);
            }
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "the node has no trusted CA certificate: looked in {TRUST_STORE_HINT}"
        ));
    }
    Ok(roots)
}

/// The TLS error behind an I/O error of [`send`] or [`get`] (a refused certificate, say), if any.
pub fn tls_cause(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// A rustls client configuration builder with the ring provider and safe protocol versions.
pub fn client_builder()
-> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, rustls::Error> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
}

/// Connects, sends a `GET` of `url` and reads the answer until the server closes or the cap is hit.
pub fn get(
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
pub fn host_header(url: &Url) -> String {
    if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    }
}

/// Connects to `url`'s host (over TLS when `tls` is given), sends `request` (a whole HTTP/1.1
/// request with `Connection: close`) and reads the answer until the server closes or the cap is
/// hit, all before `deadline`.
pub fn send(
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

pub fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
    } else {
        Ok(left)
    }
}

/// Parses an HTTP/1.x answer: status, then a body framed by `Content-Length`, chunks, or close.
pub fn parse_response(raw: &[u8], cut: bool) -> Result<Response, String> {
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
pub struct NoVerify(pub Arc<rustls::crypto::CryptoProvider>);

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
