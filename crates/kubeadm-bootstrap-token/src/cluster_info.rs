//! The `kube-public/cluster-info` ConfigMap (spec §6): a kubeconfig that tells a joining node
//! where the API server is and which CA it has, signed per token with a detached JWS so that a
//! node holding the token can tell it was not tampered with.

use crate::{Error, Token};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The ConfigMap's namespace and name.
pub const NAMESPACE: &str = "kube-public";
pub const NAME: &str = "cluster-info";
/// The data key holding the kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// Signatures are stored under `jws-kubeconfig-<token id>`.
pub const JWS_KEY_PREFIX: &str = "jws-kubeconfig-";

/// The kubeconfig kubeadm stores, byte for byte as client-go serialises it: one cluster with an
/// empty name, the CA embedded, no users or contexts.
pub fn kubeconfig(ca_pem: &[u8], server: &str) -> String {
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server}\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\nusers: null\n",
        STANDARD.encode(ca_pem)
    )
}

/// The ConfigMap holding `kubeconfig` (no signatures: the controller-manager's bootstrap signer
/// adds them, or [`sign_into`] does).
pub fn config_map(kubeconfig: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "data": {KUBECONFIG_KEY: kubeconfig},
    })
}

/// `jws-kubeconfig-<id>`.
pub fn jws_key(token_id: &str) -> String {
    format!("{JWS_KEY_PREFIX}{token_id}")
}

fn mac(token: &Token) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; the error arm cannot happen.
    Hmac::<Sha256>::new_from_slice(token.secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// The detached JWS (compact serialisation without the payload) of `payload` under `token`,
/// exactly as the bootstrap signer writes it: header `{"alg":"HS256","kid":"<id>"}`, HMAC-SHA256
/// keyed with the token secret over `B64(header) "." B64(payload)`, stored as
/// `B64(header) ".." B64(signature)`.
pub fn detached_jws(payload: &str, token: &Token) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, token.id));
    let mut m = mac(token);
    m.update(header.as_bytes());
    m.update(b".");
    m.update(URL_SAFE_NO_PAD.encode(payload).as_bytes());
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
}

/// True when `jws` is the detached signature of `payload` under `token` (kubeadm compares the
/// recomputed string; this does so in constant time).
pub fn verify_detached_jws(payload: &str, token: &Token, jws: &str) -> bool {
    let expected = detached_jws(payload, token);
    expected.len() == jws.len()
        && expected
            .bytes()
            .zip(jws.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Adds (or replaces) the signature of `token` in a cluster-info ConfigMap, as the
/// controller-manager's bootstrap signer does. Returns false when the ConfigMap has no kubeconfig.
pub fn sign_into(config_map: &mut Value, token: &Token) -> bool {
    let Some(kubeconfig) = config_map["data"][KUBECONFIG_KEY].as_str() else {
        return false;
    };
    let jws = detached_jws(kubeconfig, token);
    config_map["data"][jws_key(&token.id)] = Value::String(jws);
    true
}

/// The server URL and CA bundle (PEM) of a kubeconfig's current cluster (its only one when no
/// context is current), with the CA embedded: `admin.conf` and cluster-info are such files.
pub fn kubeconfig_cluster(text: &str) -> Result<(String, Vec<u8>), Error> {
    let bad = |m: &str| Error::InvalidKubeconfig(m.to_string());
    let doc: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| Error::InvalidKubeconfig(format!("not YAML: {e}")))?;
    let clusters = doc["clusters"].as_sequence().cloned().unwrap_or_default();
    let current = doc["current-context"].as_str().unwrap_or_default();
    let wanted = doc["contexts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|c| c["name"].as_str() == Some(current))
        .and_then(|c| c["context"]["cluster"].as_str().map(str::to_string));
    let cluster = match wanted {
        Some(name) => clusters
            .iter()
            .find(|c| c["name"].as_str() == Some(name.as_str())),
        None => clusters.first(),
    }
    .ok_or_else(|| bad("no cluster entry for the current context"))?;
    let server = cluster["cluster"]["server"]
        .as_str()
        .ok_or_else(|| bad("the cluster has no server"))?;
    let ca = cluster["cluster"]["certificate-authority-data"]
        .as_str()
        .ok_or_else(|| bad("the cluster has no certificate-authority-data"))?;
    let ca = STANDARD
        .decode(ca.trim())
        .map_err(|e| Error::InvalidKubeconfig(format!("certificate-authority-data is not base64: {e}")))?;
    Ok((server.to_string(), ca))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = include_str!("../testdata/jws-vector.json");

    fn vector() -> (Token, String, String) {
        let v: Value = serde_json::from_str(VECTOR).expect("vector is JSON");
        let s = |k: &str| v[k].as_str().expect(k).to_string();
        (
            Token::parse(&s("token")).expect("token"),
            s("kubeconfig"),
            s("jws-kubeconfig-abcdef"),
        )
    }

    #[test]
    fn signs_like_the_controller_managers_bootstrap_signer() {
        let (token, kubeconfig, jws) = vector();
        assert_eq!(detached_jws(&kubeconfig, &token), jws);
        assert!(verify_detached_jws(&kubeconfig, &token, &jws));
    }

    #[test]
    fn verification_rejects_other_tokens_payloads_and_signatures() {
        let (token, kubeconfig, jws) = vector();
        let other = Token::parse("abcdef.0123456789abcdee").expect("token");
        assert!(!verify_detached_jws(&kubeconfig, &other, &jws));
        assert!(!verify_detached_jws(&format!("{kubeconfig} "), &token, &jws));
        assert!(!verify_detached_jws(&kubeconfig, &token, &jws[..jws.len() - 1]));
    }

    #[test]
    fn kubeconfig_is_byte_identical_to_kubeadms() {
        let (_, kubeconfig, _) = vector();
        let (server, ca) = kubeconfig_cluster(&kubeconfig).expect("parses");
        assert_eq!(server, "https://10.200.0.2:6443");
        assert!(ca.starts_with(b"-----BEGIN CERTIFICATE-----"));
        assert_eq!(super::kubeconfig(&ca, &server), kubeconfig);
    }

    #[test]
    fn sign_into_adds_the_key() {
        let (token, kubeconfig, jws) = vector();
        let mut cm = config_map(&kubeconfig);
        assert!(sign_into(&mut cm, &token));
        assert_eq!(cm["data"]["jws-kubeconfig-abcdef"], jws.as_str());
        assert!(!sign_into(&mut json!({"data": {}}), &token));
    }

    #[test]
    fn kubeconfig_cluster_follows_the_current_context() {
        let text = "clusters:\n- name: a\n  cluster: {server: https://a:6443, certificate-authority-data: YQ==}\n\
                    - name: b\n  cluster: {server: https://b:6443, certificate-authority-data: Yg==}\n\
                    contexts:\n- name: ctx\n  context: {cluster: b, user: u}\ncurrent-context: ctx\n";
        assert_eq!(
            kubeconfig_cluster(text).expect("parses"),
            ("https://b:6443".to_string(), b"b".to_vec())
        );
        assert!(kubeconfig_cluster("clusters: []").is_err());
    }
}
