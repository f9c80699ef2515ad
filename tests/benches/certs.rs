//! The PKI: `certs` + `kubeconfig` as plugins against the same certificate code (`kubeadm-pki`)
//! compiled natively, for RSA-2048 and ECDSA-P256, and key generation against
//! `openssl genrsa 2048` as the physical-limit anchor.
//!
//! `cargo bench -p wasmadm-tests --bench certs` prints a table; docs/benchmarks.md records it.
//! Key generation time is random (prime search), so figures are means over several runs.

use kubeadm_pki::kubeadm::{CERTS, NodeFacts, leaf_spec};
use kubeadm_pki::{Certificate, KeyAlgorithm, PrivateKey, Usage};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use wasmadm::config::kubeadm::{self, Flags};
use wasmadm::config::pipeline::Pipeline;
use wasmadm::runtime::Command;
use wasmadm::util::write_atomic;
use wasmadm_tests::{Run, node};

/// Keys made by `certs` (10 certificates + the service-account key) and `kubeconfig` (5 clients).
const KEYS: usize = 16;

fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / samples.len() as u32
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    timed(runs, || {
        let t = Instant::now();
        f();
        t.elapsed()
    })
}

/// Mean of `runs` calls of `f`, each returning the time it measured itself.
fn timed(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    mean(&(0..runs).map(|_| f()).collect::<Vec<_>>())
}

fn config(dir: &Path, algorithm: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{algorithm}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             localAPIEndpoint: {{advertiseAddress: 10.200.0.2, bindPort: 6443}}\n\
             nodeRegistration: {{name: n1}}\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
             encryptionAlgorithm: {algorithm}\n"
        ),
    )
    .expect("config");
    path
}

/// `init phase certs all` + `init phase kubeconfig all` on a fresh node, as plugins: the time of
/// the two commands (copying the fixture node is not counted), and of the two phases alone
/// (instantiation and the plugins' own work, without loading the pipeline's plugins).
fn plugin_run(config: &Path) -> (Duration, Duration) {
    let pipeline = Pipeline::builtin_default().expect("pipeline");
    let root = node("healthy");
    let start = Instant::now();
    let mut phases = Duration::ZERO;
    for phase in ["certs", "kubeconfig"] {
        let mut run = Run::new(&pipeline, root.path());
        run.config = Some(config);
        run.only = Some((phase.into(), Some("all".into())));
        let out = run.go();
        let report = out.result.as_ref().unwrap_or_else(|e| panic!("{phase}: {e}"));
        phases += report.timings.iter().map(|(_, d)| *d).sum::<Duration>();
    }
    (start.elapsed(), phases)
}

/// The same work natively with the same crate: every key, certificate and PEM encoding, each
/// file written atomically as the files capability does.
fn native_run(config: &Path, algorithm: KeyAlgorithm) -> Duration {
    let out = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    let mut files = 0;
    let mut write = |pem: String| {
        files += 1;
        write_atomic(&out.path().join(format!("{files}.pem")), pem.as_bytes(), 0o600).expect("write");
    };
    let resolved = kubeadm::resolve(Some(config), Command::Init, &Flags::default(), "n1").expect("config");
    let cluster = resolved.cluster.expect("cluster configuration");
    let facts = NodeFacts {
        node_name: "n1",
        advertise_address: Some(IpAddr::from([10, 200, 0, 2])),
        cluster: &cluster,
    };
    let now = time::OffsetDateTime::now_utc();
    let year = time::Duration::days(365);
    let mut cas: Vec<(&str, Certificate, PrivateKey)> = Vec::new();
    for def in CERTS {
        let key = PrivateKey::generate(algorithm).expect("key");
        let cert = match def.ca {
            None => Certificate::new_ca(def.name, &key, year * 10, now).expect("ca"),
            Some(ca) => {
                let (_, ca_cert, ca_key) = cas.iter().find(|(n, ..)| *n == ca).expect("issuer");
                let (spec, _) = leaf_spec(def, &facts).expect("spec");
                Certificate::new_signed(&spec, &key.public_key(), ca_cert, ca_key, year, now).expect("leaf")
            }
        };
        write(cert.to_pem());
        write(key.to_pem().expect("pem"));
        if def.ca.is_none() {
            cas.push((def.name, cert, key));
        }
    }
    let sa = PrivateKey::generate(algorithm).expect("sa");
    write(sa.to_pem().expect("sa.key"));
    write(sa.public_key().to_pem().expect("sa.pub"));
    let (_, ca_cert, ca_key) = &cas[0];
    for cn in [
        "kubernetes-admin",
        "kubernetes-super-admin",
        "system:node:n1",
        "cm",
        "sched",
    ] {
        let key = PrivateKey::generate(algorithm).expect("key");
        let spec = kubeadm_pki::CertSpec {
            common_name: cn.into(),
            usages: vec![Usage::ClientAuth],
            ..Default::default()
        };
        let cert =
            Certificate::new_signed(&spec, &key.public_key(), ca_cert, ca_key, year, now).expect("client");
        write(format!("{}{}", cert.to_pem(), key.to_pem().expect("pem")));
    }
    start.elapsed()
}

fn openssl_genrsa() {
    let ok = std::process::Command::new("openssl")
        .args(["genrsa", "-out", "/dev/null", "2048"])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success());
}

fn row(what: &str, d: Duration) {
    println!("{what:<64} {:>10.1} ms", d.as_secs_f64() * 1e3);
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs: usize = std::env::var("CERTS_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    // Compile the plugins once, outside the measurements.
    let _ = plugin_run(&config(dir.path(), "ECDSA-P256"));

    println!("certs + kubeconfig ({KEYS} keys), mean of {runs} runs");
    for (name, algorithm) in [
        ("ECDSA-P256", KeyAlgorithm::EcdsaP256),
        ("RSA-2048", KeyAlgorithm::Rsa2048),
    ] {
        let config = config(dir.path(), name);
        let plugin: Vec<(Duration, Duration)> = (0..runs).map(|_| plugin_run(&config)).collect();
        let commands = mean(&plugin.iter().map(|p| p.0).collect::<Vec<_>>());
        let phases = mean(&plugin.iter().map(|p| p.1).collect::<Vec<_>>());
        let native = timed(runs, || native_run(&config, algorithm));
        row(
            &format!("{name}: plugins, the two `init phase` commands"),
            commands,
        );
        row(&format!("{name}: plugins, the two phases alone"), phases);
        row(&format!("{name}: native, same kubeadm-pki code"), native);
        let ratio = |d: Duration| d.as_secs_f64() / native.as_secs_f64();
        println!(
            "{name}: plugin / native = {:.2}x (phases), {:.2}x (commands)",
            ratio(phases),
            ratio(commands)
        );
    }

    let native_keys = time(runs, || {
        for _ in 0..KEYS {
            PrivateKey::generate(KeyAlgorithm::Rsa2048).expect("key");
        }
    });
    // `rsa`'s own generator (kubeadm-pki used it before it searched primes itself).
    let rsa_crate = time(runs, || {
        for _ in 0..KEYS {
            rsa::RsaPrivateKey::new(&mut kubeadm_pki::rng::SysRng, 2048).expect("key");
        }
    });
    let openssl = time(runs, || {
        for _ in 0..KEYS {
            openssl_genrsa();
        }
    });
    row(
        &format!("RSA-2048 key generation x{KEYS}: native kubeadm-pki"),
        native_keys,
    );
    row(
        &format!("RSA-2048 key generation x{KEYS}: native `rsa::RsaPrivateKey::new`"),
        rsa_crate,
    );
    row(
        &format!("RSA-2048 key generation x{KEYS}: `openssl genrsa 2048`"),
        openssl,
    );
}
