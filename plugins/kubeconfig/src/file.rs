//! The kubeconfig file format, kept pure (no capability calls) so that rendering can be compared
//! with real kubeadm's files and parsing can be tested on garbage.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// What one kubeconfig file says: a single cluster, user and context, as kubeadm writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kubeconfig {
    /// `clusterName` (`kubernetes`): the cluster entry's name.
    pub cluster_name: String,
    /// `https://host:port` of the API server.
    pub server: String,
    /// The user name, which is also the client certificate's CN (`kubernetes-admin`).
    pub user: String,
    /// PEM of the CA certificate.
    pub ca_pem: Vec<u8>,
    /// PEM of the client certificate.
    pub client_cert_pem: Vec<u8>,
    /// PEM of the client's private key.
    pub client_key_pem: Vec<u8>,
}

/// Why an existing kubeconfig file cannot be read. The caller adds the file's path.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Yaml(String),
    #[error("failed to find CurrentContext in Contexts of the kubeconfig file")]
    NoContext,
    #[error("failed to find the given CurrentContext Cluster in Clusters of the kubeconfig file")]
    NoCluster,
    #[error("{field} is not valid base64: {message}")]
    Base64 { field: &'static str, message: String },
}

/// Quotes a YAML scalar when a plain one would be read back differently, as Go's YAML encoder
/// does; kubeadm's names (`system:node:n1`) and URLs stay plain.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c))
        && !s.ends_with(' ')
        && !s.chars().any(char::is_control)
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
        )
        && s.parse::<f64>().is_err();
    if plain {
        s.to_string()
    } else {
        // A JSON string is a valid double-quoted YAML scalar.
        format!("{s:?}").replace("\\'", "'")
    }
}

/// Renders the file exactly as kubeadm (client-go's `clientcmd.Write`) lays it out: keys sorted,
/// two-space indents, data fields base64 of the PEM.
pub fn render(k: &Kubeconfig) -> String {
    let context = format!("{}@{}", k.user, k.cluster_name);
    format!(
        "apiVersion: v1\n\
         clusters:\n\
         - cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {cluster}\n\
         contexts:\n\
         - context:\n    cluster: {cluster}\n    user: {user}\n  name: {context}\n\
         current-context: {context}\n\
         kind: Config\n\
         users:\n\
         - name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = STANDARD.encode(&k.ca_pem),
        server = scalar(&k.server),
        cluster = scalar(&k.cluster_name),
        user = scalar(&k.user),
        context = scalar(&context),
        cert = STANDARD.encode(&k.client_cert_pem),
        key = STANDARD.encode(&k.client_key_pem),
    )
}

/// What kubeadm looks at in a kubeconfig that is already on disk: the current context's cluster
/// (server and CA) and user (embedded client credentials, when there are any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Existing {
    pub server: String,
    /// Decoded `certificate-authority-data` (PEM), empty when absent.
    pub ca_pem: Vec<u8>,
    /// Decoded `client-certificate-data`; `None` when the user authenticates otherwise (a
    /// certificate file such as kubelet's rotating `kubelet-client-current.pem`, or a token).
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct Raw {
    clusters: Vec<Named<RawCluster>>,
    contexts: Vec<Named<RawContext>>,
    users: Vec<Named<RawUser>>,
    current_context: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    value: T,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct RawCluster {
    server: String,
    certificate_authority_data: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawContext {
    cluster: String,
    user: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct RawUser {
    client_certificate_data: String,
    client_key_data: String,
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, FileError> {
    let compact: String = text.split_whitespace().collect();
    STANDARD.decode(compact).map_err(|e| FileError::Base64 {
        field,
        message: e.to_string(),
    })
}

/// Parses a kubeconfig the way `clientcmd.LoadFromFile` would for kubeadm's checks.
pub fn parse(bytes: &[u8]) -> Result<Existing, FileError> {
    let raw: Raw = serde_yaml::from_slice(bytes).map_err(|e| FileError::Yaml(e.to_string()))?;
    let context = raw
        .contexts
        .iter()
        .find(|c| c.name == raw.current_context)
        .ok_or(FileError::NoContext)?;
    let cluster = raw
        .clusters
        .iter()
        .find(|c| c.name == context.value.cluster)
        .ok_or(FileError::NoCluster)?;
    let user = raw.users.iter().find(|u| u.name == context.value.user);
    let data = |field, text: &str| -> Result<Option<Vec<u8>>, FileError> {
        if text.trim().is_empty() {
            Ok(None)
        } else {
            decode(field, text).map(Some)
        }
    };
    Ok(Existing {
        server: cluster.value.server.clone(),
        ca_pem: data(
            "certificate-authority-data",
            &cluster.value.certificate_authority_data,
        )?
        .unwrap_or_default(),
        client_cert_pem: match user {
            Some(u) => data("client-certificate-data", &u.value.client_certificate_data)?,
            None => None,
        },
        client_key_pem: match user {
            Some(u) => data("client-key-data", &u.value.client_key_data)?,
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/reference/kubeconfig"
    );

    /// Renders with the placeholders real kubeadm's files carry in place of data, so that the
    /// rest must match byte for byte.
    fn placeholders(user: &str) -> String {
        let k = Kubeconfig {
            cluster_name: "kubernetes".into(),
            server: "https://10.200.0.2:6443".into(),
            user: user.into(),
            ca_pem: b"CA".to_vec(),
            client_cert_pem: b"CERT".to_vec(),
            client_key_pem: b"KEY".to_vec(),
        };
        render(&k)
            .replace(&STANDARD.encode("CA"), "<base64 PEM of ca.crt>")
            .replace(&STANDARD.encode("CERT"), "<base64 PEM (client-certificate-data)>")
            .replace(&STANDARD.encode("KEY"), "<base64 PEM (client-key-data)>")
    }

    #[test]
    fn renders_kubeadms_files() {
        // kubelet.conf as the kubeconfig phase writes it, before kubelet-finalize points it at the
        // rotating certificate.
        for (file, user) in [
            ("admin.conf", "kubernetes-admin"),
            ("super-admin.conf", "kubernetes-super-admin"),
            ("controller-manager.conf", "system:kube-controller-manager"),
            ("scheduler.conf", "system:kube-scheduler"),
            ("../kubeconfig-phase/kubelet.conf", "system:node:n1"),
        ] {
            let golden = std::fs::read_to_string(format!("{DIR}/{file}")).expect("golden file");
            assert_eq!(placeholders(user), golden, "{file}");
        }
    }

    #[test]
    fn parse_reads_back_what_render_wrote() {
        let k = Kubeconfig {
            cluster_name: "kubernetes".into(),
            server: "https://[fd00::1]:6443".into(),
            user: "system:node:n1".into(),
            ca_pem: b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            client_cert_pem: b"cert".to_vec(),
            client_key_pem: b"key".to_vec(),
        };
        let e = parse(render(&k).as_bytes()).expect("parse");
        assert_eq!(e.server, k.server);
        assert_eq!(e.ca_pem, k.ca_pem);
        assert_eq!(e.client_cert_pem.as_deref(), Some(&b"cert"[..]));
        assert_eq!(e.client_key_pem.as_deref(), Some(&b"key"[..]));
    }

    #[test]
    fn parse_accepts_a_certificate_file_user_and_refuses_garbage() {
        let golden = std::fs::read_to_string(format!("{DIR}/kubelet.conf")).expect("golden");
        let golden = golden.replace("<base64 PEM of ca.crt>", &STANDARD.encode("CA"));
        let e = parse(golden.as_bytes()).expect("parse");
        assert_eq!(e.client_cert_pem, None);
        assert_eq!(e.ca_pem, b"CA");
        assert!(parse(b"\x00\xff garbage: [").is_err());
        assert!(matches!(
            parse(b"apiVersion: v1\nkind: Config\n"),
            Err(FileError::NoContext)
        ));
    }

    #[test]
    fn odd_names_are_quoted() {
        assert_eq!(scalar("system:node:n1"), "system:node:n1");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar(""), "\"\"");
    }
}
