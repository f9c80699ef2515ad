//! kubeadm's certificate table (`kubeadm init phase certs <name>`) and its SAN rules.

use crate::cert::{CertSpec, Usage};
use kubeadm_config::ClusterConfiguration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One entry of the table: a CA or a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertDef {
    /// The sub-phase name (`apiserver`, `etcd-ca`, ...).
    pub name: &'static str,
    /// The file name without extension, relative to the certificates dir (`etcd/server`).
    pub base_name: &'static str,
    /// The issuing CA's sub-phase name; `None` for a CA.
    pub ca: Option<&'static str>,
    pub common_name: CommonName,
    pub usages: &'static [Usage],
    /// One line for `phase list`, kubeadm's wording.
    pub summary: &'static str,
}

/// A CN that is either fixed or the node's name (etcd serving certificates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommonName {
    Fixed(&'static str),
    NodeName,
}

const SERVER: &[Usage] = &[Usage::ServerAuth];
const CLIENT: &[Usage] = &[Usage::ClientAuth];
const BOTH: &[Usage] = &[Usage::ServerAuth, Usage::ClientAuth];

/// The certificates, in kubeadm's order. (The `sa` key pair is not a certificate and follows them.)
pub const CERTS: &[CertDef] = &[
    CertDef {
        name: "ca",
        base_name: "ca",
        ca: None,
        common_name: CommonName::Fixed("kubernetes"),
        usages: &[],
        summary: "Generate the self-signed Kubernetes CA to provision identities for other Kubernetes components",
    },
    CertDef {
        name: "apiserver",
        base_name: "apiserver",
        ca: Some("ca"),
        common_name: CommonName::Fixed("kube-apiserver"),
        usages: SERVER,
        summary: "Generate the certificate for serving the Kubernetes API",
    },
    CertDef {
        name: "apiserver-kubelet-client",
        base_name: "apiserver-kubelet-client",
        ca: Some("ca"),
        common_name: CommonName::Fixed("kube-apiserver-kubelet-client"),
        usages: CLIENT,
        summary: "Generate the certificate for the API server to connect to kubelet",
    },
    CertDef {
        name: "front-proxy-ca",
        base_name: "front-proxy-ca",
        ca: None,
        common_name: CommonName::Fixed("front-proxy-ca"),
        usages: &[],
        summary: "Generate the self-signed CA to provision identities for front proxy",
    },
    CertDef {
        name: "front-proxy-client",
        base_name: "front-proxy-client",
        ca: Some("front-proxy-ca"),
        common_name: CommonName::Fixed("front-proxy-client"),
        usages: CLIENT,
        summary: "Generate the certificate for the front proxy client",
    },
    CertDef {
        name: "etcd-ca",
        base_name: "etcd/ca",
        ca: None,
        common_name: CommonName::Fixed("etcd-ca"),
        usages: &[],
        summary: "Generate the self-signed CA to provision identities for etcd",
    },
    CertDef {
        name: "etcd-server",
        base_name: "etcd/server",
        ca: Some("etcd-ca"),
        common_name: CommonName::NodeName,
        usages: BOTH,
        summary: "Generate the certificate for serving etcd",
    },
    CertDef {
        name: "etcd-peer",
        base_name: "etcd/peer",
        ca: Some("etcd-ca"),
        common_name: CommonName::NodeName,
        usages: BOTH,
        summary: "Generate the certificate for etcd nodes to communicate with each other",
    },
    CertDef {
        name: "etcd-healthcheck-client",
        base_name: "etcd/healthcheck-client",
        ca: Some("etcd-ca"),
        common_name: CommonName::Fixed("kube-etcd-healthcheck-client"),
        usages: CLIENT,
        summary: "Generate the certificate for liveness probes to healthcheck etcd",
    },
    CertDef {
        name: "apiserver-etcd-client",
        base_name: "apiserver-etcd-client",
        ca: Some("etcd-ca"),
        common_name: CommonName::Fixed("kube-apiserver-etcd-client"),
        usages: CLIENT,
        summary: "Generate the certificate the apiserver uses to access etcd",
    },
];

/// The `sa` sub-phase's summary.
pub const SA_SUMMARY: &str =
    "Generate a private key for signing service account tokens along with its public key";

/// Looks a certificate up by sub-phase name.
pub fn def(name: &str) -> Option<&'static CertDef> {
    CERTS.iter().find(|d| d.name == name)
}

impl CertDef {
    pub fn is_ca(&self) -> bool {
        self.ca.is_none()
    }

    /// True for the certificates that belong to local etcd (skipped with external etcd).
    pub fn is_etcd(&self) -> bool {
        self.name == "etcd-ca" || self.ca == Some("etcd-ca")
    }
}

/// What the SANs are computed from.
pub struct NodeFacts<'a> {
    pub node_name: &'a str,
    /// `None` when the configuration has none (kubeadm would detect the default interface's
    /// address; the sandbox cannot): the certificates then carry no node IP.
    pub advertise_address: Option<IpAddr>,
    pub cluster: &'a ClusterConfiguration,
}

/// The leaf spec for `def` (SANs deduplicated as kubeadm does), plus warnings for
/// `certSANs` entries that were neither an IP nor a DNS name and were dropped.
pub fn leaf_spec(def: &CertDef, facts: &NodeFacts<'_>) -> Result<(CertSpec, Vec<String>), String> {
    let mut spec = CertSpec {
        common_name: match def.common_name {
            CommonName::Fixed(cn) => cn.to_string(),
            CommonName::NodeName => facts.node_name.to_string(),
        },
        usages: def.usages.to_vec(),
        ..CertSpec::default()
    };
    let mut warnings = Vec::new();
    let mut extra = |spec: &mut CertSpec, names: &[String], cert: &str| {
        for n in names {
            if let Ok(ip) = n.parse::<IpAddr>() {
                spec.ips.push(ip);
            } else if is_dns1123_subdomain(n) || is_wildcard_dns1123_subdomain(n) {
                spec.dns_names.push(n.clone());
            } else {
                warnings.push(format!(
                    "'{n}' was not added to the '{cert}' SAN, because it is not a valid IP or RFC-1123 compliant DNS entry"
                ));
            }
        }
    };
    match def.name {
        "apiserver" => {
            let c = facts.cluster;
            let vip = api_server_virtual_ip(&c.networking.service_subnet)?;
            let domain = &c.networking.dns_domain;
            spec.dns_names = vec![
                facts.node_name.to_string(),
                "kubernetes".into(),
                "kubernetes.default".into(),
                "kubernetes.default.svc".into(),
                format!("kubernetes.default.svc.{domain}"),
            ];
            spec.ips = vec![vip];
            spec.ips.extend(facts.advertise_address);
            if !c.control_plane_endpoint.is_empty() {
                let host = endpoint_host(&c.control_plane_endpoint);
                match host.parse::<IpAddr>() {
                    Ok(ip) => spec.ips.push(ip),
                    Err(_) => spec.dns_names.push(host.to_string()),
                }
            }
            extra(&mut spec, &c.api_server.cert_sans, "apiserver");
        }
        "etcd-server" | "etcd-peer" => {
            spec.dns_names = vec![facts.node_name.to_string(), "localhost".into()];
            spec.ips = facts.advertise_address.into_iter().collect();
            spec.ips
                .extend([IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)]);
            let local = facts.cluster.etcd.local.as_ref();
            let sans = match (def.name, local) {
                ("etcd-server", Some(l)) => l.server_cert_sans.clone(),
                ("etcd-peer", Some(l)) => l.peer_cert_sans.clone(),
                _ => Vec::new(),
            };
            extra(&mut spec, &sans, def.name);
        }
        _ => {}
    }
    spec.dedup_alt_names();
    Ok((spec, warnings))
}

/// The first IP of the first service subnet: the `kubernetes` Service's ClusterIP.
pub fn api_server_virtual_ip(service_subnet: &str) -> Result<IpAddr, String> {
    let first = service_subnet.split(',').next().unwrap_or_default().trim();
    let (addr, prefix) = kubeadm_config::validate::parse_cidr(first)
        .ok_or_else(|| format!("networking.serviceSubnet: {first:?} is not a valid CIDR"))?;
    Ok(match addr {
        IpAddr::V4(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from((u32::from(a) & mask).wrapping_add(1)))
        }
        IpAddr::V6(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from((u128::from(a) & mask).wrapping_add(1)))
        }
    })
}

/// The host part of `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
fn endpoint_host(endpoint: &str) -> &str {
    if let Some(rest) = endpoint.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if endpoint.parse::<IpAddr>().is_ok() {
        return endpoint;
    }
    endpoint.rsplit_once(':').map(|(h, _)| h).unwrap_or(endpoint)
}

pub use kubeadm_config::validate::is_dns1123_subdomain;

/// `*.` followed by an RFC 1123 subdomain.
pub fn is_wildcard_dns1123_subdomain(s: &str) -> bool {
    s.strip_prefix("*.").is_some_and(is_dns1123_subdomain)
}

/// A validity period from the configuration (`certificateValidityPeriod`,
/// `caCertificateValidityPeriod`): `default_hours` when unset; the error names `field`.
pub fn validity_period(
    field: &str,
    value: Option<&str>,
    default_hours: i64,
) -> Result<time::Duration, String> {
    match value {
        None => Ok(time::Duration::hours(default_hours)),
        Some(v) => kubeadm_config::validate::parse_duration(v)
            .filter(|s| *s > 0.0)
            .map(time::Duration::seconds_f64)
            .ok_or_else(|| format!("{field}: {v:?} is not a valid duration")),
    }
}
