//! kubeadm's `upload-certs` / `download-certs` crypto, shared by the `upload-certs` plugin, the
//! host's `certs certificate-key` command and (later) the join side's download.
//!
//! The format is kubeadm's `cryptoutil.EncryptBytes`: AES-256-GCM with the 32-byte certificate
//! key, a random 12-byte nonce, no associated data, stored as `nonce ‖ ciphertext ‖ tag`. Keeping
//! it byte-compatible means a real `kubeadm join --control-plane --certificate-key` can download
//! what wasmadm uploaded, and the other way round.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use kubeadm_config::ClusterConfiguration;
use std::collections::BTreeMap;

/// The Secret in `kube-system` that carries the encrypted certificates.
pub const SECRET_NAME: &str = "kubeadm-certs";
/// The Role and RoleBinding that let bootstrap tokens read [`SECRET_NAME`].
pub const ROLE_NAME: &str = "kubeadm:kubeadm-certs";
/// Size of the certificate key in bytes (kubeadm's `CertificateKeySize`).
pub const KEY_SIZE: usize = 32;
const NONCE_SIZE: usize = 12;

/// What went wrong with a key or an entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "the certificate key must be 64 hexadecimal characters ({KEY_SIZE} bytes), got {0}; \
         generate one with `wasmadm certs certificate-key`"
    )]
    InvalidKey(String),
    #[error("the system random number generator failed: {0}")]
    Random(String),
    #[error(
        "entry {0:?} of Secret \"kubeadm-certs\" is shorter than an AES-GCM nonce: it was not written by upload-certs"
    )]
    TooShort(String),
    #[error(
        "cannot decrypt entry {0:?} of Secret \"kubeadm-certs\" with the given certificate key: the key is \
         wrong, or the Secret was uploaded with another key. Use the key printed by `init --upload-certs`, \
         or run `wasmadm init phase upload-certs --upload-certs` on a control-plane node to upload with a new one"
    )]
    WrongKey(String),
    #[error(
        "the Secret \"kubeadm-certs\" does not include the required certificate or key - name: {name}, \
         path: {path}; run `wasmadm init phase upload-certs --upload-certs` on a control-plane node to upload \
         them again"
    )]
    Missing { name: String, path: String },
}

/// A validated 32-byte certificate key.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateKey([u8; KEY_SIZE]);

impl std::fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertificateKey(..)")
    }
}

impl CertificateKey {
    /// Parses kubeadm's hex form (64 characters).
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let shown = if text.len() == KEY_SIZE * 2 {
            "a value that is not hexadecimal".to_string()
        } else {
            format!("{} characters", text.len())
        };
        let bytes = hex::decode(text).map_err(|_| Error::InvalidKey(shown.clone()))?;
        let bytes: [u8; KEY_SIZE] = bytes.try_into().map_err(|_| Error::InvalidKey(shown))?;
        Ok(Self(bytes))
    }

    /// A new random key (kubeadm's `CreateCertificateKey`).
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = [0u8; KEY_SIZE];
        random(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The 64-character lower-case hex form kubeadm prints and accepts.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

fn random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}

/// Encrypts `data` as kubeadm's `EncryptBytes`: `nonce ‖ ciphertext ‖ tag`.
pub fn encrypt(data: &[u8], key: &CertificateKey) -> Result<Vec<u8>, Error> {
    let mut nonce = [0u8; NONCE_SIZE];
    random(&mut nonce)?;
    let sealed = key
        .cipher()
        .encrypt(Nonce::from_slice(&nonce), data)
        .map_err(|_| Error::Random("AES-GCM refused the input".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts one entry (`name` is the Secret key, for the error message).
pub fn decrypt(name: &str, data: &[u8], key: &CertificateKey) -> Result<Vec<u8>, Error> {
    if data.len() < NONCE_SIZE {
        return Err(Error::TooShort(name.to_string()));
    }
    let (nonce, sealed) = data.split_at(NONCE_SIZE);
    key.cipher()
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|_| Error::WrongKey(name.to_string()))
}

/// Decrypts every entry of the Secret's data (already base64-decoded), as kubeadm's download
/// does: all or nothing, and an empty entry (a file that was missing at upload) stays empty.
pub fn decrypt_all(
    data: &BTreeMap<String, Vec<u8>>,
    key: &CertificateKey,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    data.iter()
        .map(|(name, value)| {
            let plain = if value.is_empty() {
                Vec::new()
            } else {
                decrypt(name, value, key)?
            };
            Ok((name.clone(), plain))
        })
        .collect()
}

/// What a joining control-plane node writes from the decrypted Secret (kubeadm's
/// `DownloadCerts`): every expected entry must be there; an empty one (a file that was missing
/// at upload) is not written. Returns (node path, contents).
pub fn files_to_write(
    cluster: &ClusterConfiguration,
    decrypted: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    for (name, path) in certs_to_transfer(cluster) {
        let data = decrypted.get(&name).ok_or_else(|| Error::Missing {
            name: name.clone(),
            path: path.clone(),
        })?;
        if !data.is_empty() {
            out.push((path, data.clone()));
        }
    }
    Ok(out)
}

/// The files kubeadm transfers, as (Secret key, node path), in kubeadm's key naming (the file
/// name under the certificates dir with `/` turned into `-`; external etcd files under fixed
/// names).
pub fn certs_to_transfer(cluster: &ClusterConfiguration) -> Vec<(String, String)> {
    let dir = cluster.certificates_dir.trim_end_matches('/');
    let mut names = vec![
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "sa.pub",
        "sa.key",
    ];
    let mut out: Vec<(String, String)> = Vec::new();
    match &cluster.etcd.external {
        None => names.extend(["etcd/ca.crt", "etcd/ca.key"]),
        Some(external) => {
            out.push(("external-etcd-ca.crt".into(), external.ca_file.clone()));
            out.push(("external-etcd.crt".into(), external.cert_file.clone()));
            out.push(("external-etcd.key".into(), external.key_file.clone()));
        }
    }
    out.extend(
        names
            .into_iter()
            .map(|n| (n.replace('/', "-"), format!("{dir}/{n}"))),
    );
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let key = CertificateKey::generate().expect("key");
        let sealed = encrypt(b"hello", &key).expect("encrypt");
        assert_eq!(sealed.len(), NONCE_SIZE + 5 + 16);
        assert_eq!(decrypt("x", &sealed, &key).expect("decrypt"), b"hello");
        let other = CertificateKey::generate().expect("key");
        assert_eq!(
            decrypt("ca.key", &sealed, &other),
            Err(Error::WrongKey("ca.key".into()))
        );
        assert_eq!(
            decrypt("ca.key", &sealed[..5], &key),
            Err(Error::TooShort("ca.key".into()))
        );
    }

    #[test]
    fn keys_are_64_hex_characters() {
        let key = CertificateKey::generate().expect("key");
        let text = key.to_hex();
        assert_eq!(text.len(), 64);
        assert!(
            text.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(CertificateKey::from_hex(&text), Ok(key));
        assert!(CertificateKey::from_hex("abcd").is_err());
        let bad = "z".repeat(64);
        let err = CertificateKey::from_hex(&bad).expect_err("not hex").to_string();
        assert!(err.contains("64 hexadecimal"), "{err}");
        assert!(err.contains("certificate-key"), "{err}");
    }

    #[test]
    fn download_needs_every_entry_and_skips_empty_ones() {
        let mut cluster = ClusterConfiguration::default();
        kubeadm_config::defaults::cluster_configuration(&mut cluster);
        let mut data: BTreeMap<String, Vec<u8>> = certs_to_transfer(&cluster)
            .into_iter()
            .map(|(k, _)| (k.clone(), k.into_bytes()))
            .collect();
        data.insert("etcd-ca.key".into(), Vec::new());
        let files = files_to_write(&cluster, &data).expect("all there");
        assert_eq!(files.len(), 7);
        assert!(files.contains(&("/etc/kubernetes/pki/sa.pub".into(), b"sa.pub".to_vec())));
        data.remove("sa.key");
        let err = files_to_write(&cluster, &data).expect_err("missing").to_string();
        assert!(
            err.contains("name: sa.key, path: /etc/kubernetes/pki/sa.key"),
            "{err}"
        );
    }

    #[test]
    fn transfer_list_follows_kubeadm() {
        let mut cluster = ClusterConfiguration::default();
        kubeadm_config::defaults::cluster_configuration(&mut cluster);
        let keys: Vec<String> = certs_to_transfer(&cluster).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "ca.crt",
                "ca.key",
                "etcd-ca.crt",
                "etcd-ca.key",
                "front-proxy-ca.crt",
                "front-proxy-ca.key",
                "sa.key",
                "sa.pub"
            ]
        );
        assert!(
            certs_to_transfer(&cluster)
                .contains(&("etcd-ca.key".into(), "/etc/kubernetes/pki/etcd/ca.key".into()))
        );
    }
}
