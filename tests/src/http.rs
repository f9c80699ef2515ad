//! Real HTTP and HTTPS servers on 127.0.0.1 (the machine's or a node's) for the health and
//! discovery tests: each answers with a scripted reply, counts connections and keeps request
//! lines. A server stops when dropped, and never serves more than [`MAX_CONNECTIONS`] connections.

use kubeadm_pki::{CertSpec, Certificate, KeyAlgorithm, PrivateKey, Usage};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most connections one test server accepts before it stops by itself.
pub const MAX_CONNECTIONS: usize = 2000;

/// What a server answers.
#[derive(Clone)]
pub enum Reply {
    /// This status and body on every request.
    Status(u16, String),
    /// `status` for the first `n` requests, then `200 ok`: a component that starts slowly.
    FailFirst(usize, u16),
    /// Accepts, reads the request, and never answers (holds the connection for 10 s).
    Silent,
}

/// A running test server.
pub struct Server {
    pub port: u16,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// The request lines received (`GET /healthz HTTP/1.1`).
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// `http://127.0.0.1:<port><path>` or `https://...`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    pub fn hits(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts a server on 127.0.0.1:0, plain or (with `tls`) HTTPS.
pub fn serve(reply: Reply, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (c, r, s) = (connections.clone(), requests.clone(), stop.clone());
    std::thread::spawn(move || {
        let started = Instant::now();
        while !s.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    if n >= MAX_CONNECTIONS {
                        return;
                    }
                    let (reply, tls, requests) = (reply.clone(), tls.clone(), r.clone());
                    std::thread::spawn(move || handle(stream, n, &reply, tls, &requests));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server {
        port,
        connections,
        requests,
        stop,
    }
}

fn handle(
    stream: TcpStream,
    n: usize,
    reply: &Reply,
    tls: Option<Arc<rustls::ServerConfig>>,
    requests: &Mutex<Vec<String>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    match tls {
        None => exchange(stream, n, reply, requests),
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            exchange(&mut tls, n, reply, requests);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

fn exchange(mut stream: impl Read + Write, n: usize, reply: &Reply, requests: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(k) => head.extend_from_slice(&buf[..k]),
        }
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    requests.lock().expect("requests").push(line);
    let (status, body) = match reply {
        Reply::Status(status, body) => (*status, body.clone()),
        Reply::FailFirst(k, status) if n < *k => (*status, "not yet".to_string()),
        Reply::FailFirst(..) => (200, "ok".to_string()),
        Reply::Silent => {
            std::thread::sleep(Duration::from_secs(10));
            return;
        }
    };
    let answer = format!(
        "HTTP/1.1 {status} Status\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
}

/// [`serve`] on the loopback of network namespace `netns` (a node's own 127.0.0.1).
pub fn serve_in(netns: &str, reply: Reply, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let netns = netns.to_string();
    // The socket is bound inside the namespace and stays there; the thread that entered it ends.
    std::thread::spawn(move || {
        crate::netns::enter(&netns);
        serve(reply, tls)
    })
    .join()
    .expect("server thread")
}

/// A CA and a serving certificate for 127.0.0.1 it signed, as PEM (ECDSA P-256, quick to make).
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestPki {
    pub fn new(ca_name: &str) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let ca_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("ca key");
        let ca = Certificate::new_ca(ca_name, &ca_key, time::Duration::days(1), now).expect("ca");
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let spec = CertSpec {
            common_name: "kube-apiserver".into(),
            ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            usages: vec![Usage::ServerAuth],
            ..Default::default()
        };
        let cert = Certificate::new_signed(
            &spec,
            &key.public_key(),
            &ca,
            &ca_key,
            time::Duration::days(1),
            now,
        )
        .expect("cert");
        Self {
            ca_pem: ca.to_pem(),
            cert_pem: cert.to_pem(),
            key_pem: key.to_pem().expect("key pem"),
        }
    }

    /// A rustls server configuration serving the certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("cert pem");
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("key pem");
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocols")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("server config");
        Arc::new(config)
    }
}
