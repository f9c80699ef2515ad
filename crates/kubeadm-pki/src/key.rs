//! Private and public keys: generation, PEM in kubeadm's formats, and signing for rcgen.

use crate::PkiError;
use crate::rng::SysRng;
use p256::elliptic_curve::pkcs8::AssociatedOid;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use std::fmt;
use std::str::FromStr;

/// kubeadm's `encryptionAlgorithm` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
    EcdsaP384,
}

impl KeyAlgorithm {
    /// Every accepted spelling, for error messages.
    pub const NAMES: [&'static str; 5] = ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"];

    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::Rsa3072 => "RSA-3072",
            KeyAlgorithm::Rsa4096 => "RSA-4096",
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
            KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = PkiError;

    /// Parses `encryptionAlgorithm`; empty means RSA-2048, as in kubeadm.
    fn from_str(s: &str) -> Result<Self, PkiError> {
        match s {
            "" | "RSA-2048" => Ok(KeyAlgorithm::Rsa2048),
            "RSA-3072" => Ok(KeyAlgorithm::Rsa3072),
            "RSA-4096" => Ok(KeyAlgorithm::Rsa4096),
            "ECDSA-P256" => Ok(KeyAlgorithm::EcdsaP256),
            "ECDSA-P384" => Ok(KeyAlgorithm::EcdsaP384),
            other => Err(PkiError::UnsupportedAlgorithm(format!(
                "{other:?} (expected one of {})",
                Self::NAMES.join(", ")
            ))),
        }
    }
}

/// A private key of one of the kinds kubeadm accepts (RSA, ECDSA P-256/P-384).
#[derive(Clone)]
pub enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
}

impl fmt::Debug for PrivateKey {
    // Never print key material, even in a debug log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.description())
    }
}

/// A public key, as found in a certificate or a `PUBLIC KEY` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Rsa(RsaPublicKey),
    P256(p256::PublicKey),
    P384(p384::PublicKey),
}

impl PrivateKey {
    /// Generates a fresh key.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, PkiError> {
        let rsa = |bits| {
            RsaPrivateKey::new(&mut SysRng, bits)
                .map(|k| PrivateKey::Rsa(Box::new(k)))
                .map_err(|e| PkiError::KeyGeneration(e.to_string()))
        };
        match algorithm {
            KeyAlgorithm::Rsa2048 => rsa(2048),
            KeyAlgorithm::Rsa3072 => rsa(3072),
            KeyAlgorithm::Rsa4096 => rsa(4096),
            KeyAlgorithm::EcdsaP256 => Ok(PrivateKey::P256(p256::SecretKey::random(&mut SysRng))),
            KeyAlgorithm::EcdsaP384 => Ok(PrivateKey::P384(p384::SecretKey::random(&mut SysRng))),
        }
    }

    /// What kind of key this is, e.g. `RSA-2048` or `ECDSA-P256`.
    pub fn description(&self) -> String {
        match self {
            PrivateKey::Rsa(k) => format!("RSA-{}", k.size() * 8),
            PrivateKey::P256(_) => "ECDSA-P256".into(),
            PrivateKey::P384(_) => "ECDSA-P384".into(),
        }
    }

    /// Parses a PEM private key: PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY` or PKCS#8
    /// `PRIVATE KEY`, the formats Go's `keyutil.ParsePrivateKeyPEM` reads. Other blocks (such as
    /// `EC PARAMETERS` written by `openssl ecparam`) are skipped.
    pub fn from_pem(data: &[u8]) -> Result<Self, PkiError> {
        let blocks = pem::parse_many(data).map_err(|e| PkiError::Pem(e.to_string()))?;
        for block in &blocks {
            let der = block.contents();
            let key = match block.tag() {
                "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(der)
                    .map(|k| PrivateKey::Rsa(Box::new(k)))
                    .map_err(|e| PkiError::Key(e.to_string()))?,
                "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(der)
                    .map(PrivateKey::P256)
                    .or_else(|_| p384::SecretKey::from_sec1_der(der).map(PrivateKey::P384))
                    .map_err(|_| PkiError::Key("not a P-256 or P-384 EC private key".into()))?,
                "PRIVATE KEY" => Self::from_pkcs8_der(der)?,
                _ => continue,
            };
            key.check()?;
            return Ok(key);
        }
        Err(PkiError::Pem(
            "data does not contain a valid RSA or ECDSA private key".into(),
        ))
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        if let Ok(k) = RsaPrivateKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P256(k));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P384(k));
        }
        Err(PkiError::Key(
            "PKCS#8 key is not RSA, ECDSA P-256 or ECDSA P-384".into(),
        ))
    }

    /// Rejects keys that parse but are unusable (an RSA key whose primes do not match).
    fn check(&self) -> Result<(), PkiError> {
        match self {
            PrivateKey::Rsa(k) => k.validate().map_err(|e| PkiError::Key(e.to_string())),
            _ => Ok(()),
        }
    }

    /// The key as PEM, in the format kubeadm writes: PKCS#1 for RSA, SEC1 for ECDSA.
    pub fn to_pem(&self) -> Result<String, PkiError> {
        let enc = |e: &dyn fmt::Display| PkiError::Encoding(e.to_string());
        match self {
            PrivateKey::Rsa(k) => k
                .to_pkcs1_pem(LineEnding::LF)
                .map(|s| s.to_string())
                .map_err(|e| enc(&e)),
            PrivateKey::P256(k) => sec1_pem(&k.to_bytes(), &k.public_key(), p256::NistP256::OID),
            PrivateKey::P384(k) => sec1_pem(&k.to_bytes(), &k.public_key(), p384::NistP384::OID),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
            PrivateKey::P256(k) => PublicKey::P256(k.public_key()),
            PrivateKey::P384(k) => PublicKey::P384(k.public_key()),
        }
    }

    /// Signs `msg` the way Go's x509 does for this key type: RSA PKCS#1 v1.5 with SHA-256,
    /// ECDSA P-256 with SHA-256, ECDSA P-384 with SHA-384 (DER-encoded signatures).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        use rsa::signature::{SignatureEncoding, Signer};
        match self {
            PrivateKey::Rsa(k) => {
                let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone());
                let sig = signer
                    .try_sign(msg)
                    .map_err(|e| PkiError::Signing(e.to_string()))?;
                Ok(sig.to_vec())
            }
            PrivateKey::P256(k) => {
                let signer = p256::ecdsa::SigningKey::from(k);
                let sig: p256::ecdsa::Signature = signer
                    .try_sign(msg)
                    .map_err(|e| PkiError::Signing(e.to_string()))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PrivateKey::P384(k) => {
                let signer = p384::ecdsa::SigningKey::from(k);
                let sig: p384::ecdsa::Signature = signer
                    .try_sign(msg)
                    .map_err(|e| PkiError::Signing(e.to_string()))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }
}

/// SEC1 `EC PRIVATE KEY` with the curve named in it, as Go's `x509.MarshalECPrivateKey` writes
/// it. (`elliptic-curve`'s own encoder leaves the curve out, and OpenSSL 3 then cannot read the key.)
fn sec1_pem<C>(
    secret: &[u8],
    public: &p256::elliptic_curve::PublicKey<C>,
    curve: rsa::pkcs8::ObjectIdentifier,
) -> Result<String, PkiError>
where
    C: p256::elliptic_curve::CurveArithmetic,
    p256::elliptic_curve::AffinePoint<C>:
        p256::elliptic_curve::sec1::FromEncodedPoint<C> + p256::elliptic_curve::sec1::ToEncodedPoint<C>,
    p256::elliptic_curve::FieldBytesSize<C>: p256::elliptic_curve::sec1::ModulusSize,
{
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use sec1::der::Encode;
    let point = public.to_encoded_point(false);
    let der = sec1::EcPrivateKey {
        private_key: secret,
        parameters: Some(sec1::EcParameters::NamedCurve(curve)),
        public_key: Some(point.as_bytes()),
    }
    .to_der()
    .map_err(|e| PkiError::Encoding(e.to_string()))?;
    Ok(pem::encode_config(
        &pem::Pem::new("EC PRIVATE KEY", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    ))
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, PkiError> {
        if let Ok(k) = RsaPublicKey::from_public_key_der(der) {
            return Ok(PublicKey::Rsa(k));
        }
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey::P256(k));
        }
        if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey::P384(k));
        }
        Err(PkiError::Key(
            "public key is not RSA, ECDSA P-256 or ECDSA P-384".into(),
        ))
    }

    /// Parses a PEM `PUBLIC KEY` (PKIX) block.
    pub fn from_pem(data: &[u8]) -> Result<Self, PkiError> {
        let blocks = pem::parse_many(data).map_err(|e| PkiError::Pem(e.to_string()))?;
        let block = blocks
            .iter()
            .find(|b| b.tag() == "PUBLIC KEY")
            .ok_or_else(|| PkiError::Pem("no PUBLIC KEY block".into()))?;
        Self::from_spki_der(block.contents())
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn to_spki_der(&self) -> Result<Vec<u8>, PkiError> {
        let der = match self {
            PublicKey::Rsa(k) => k.to_public_key_der(),
            PublicKey::P256(k) => k.to_public_key_der(),
            PublicKey::P384(k) => k.to_public_key_der(),
        };
        der.map(|d| d.as_bytes().to_vec())
            .map_err(|e| PkiError::Encoding(e.to_string()))
    }

    /// PEM `PUBLIC KEY` (PKIX), the format of kubeadm's `sa.pub`.
    pub fn to_pem(&self) -> Result<String, PkiError> {
        let der = self.to_spki_der()?;
        Ok(pem::encode_config(
            &pem::Pem::new("PUBLIC KEY", der),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        ))
    }

    /// The content of the SubjectPublicKeyInfo's BIT STRING: what X.509 key identifiers hash
    /// (PKCS#1 `RSAPublicKey` for RSA, the uncompressed point for ECDSA).
    pub fn raw_bytes(&self) -> Result<Vec<u8>, PkiError> {
        match self {
            PublicKey::Rsa(k) => k
                .to_pkcs1_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|e| PkiError::Encoding(e.to_string())),
            PublicKey::P256(k) => {
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                Ok(k.to_encoded_point(false).as_bytes().to_vec())
            }
            PublicKey::P384(k) => {
                use p384::elliptic_curve::sec1::ToEncodedPoint;
                Ok(k.to_encoded_point(false).as_bytes().to_vec())
            }
        }
    }

    /// The Subject Key Identifier Go's x509 computes (RFC 5280 method 1: SHA-1 of the key bits),
    /// so certificates made here carry the same identifiers as kubeadm's.
    pub fn key_identifier(&self) -> Result<Vec<u8>, PkiError> {
        use sha1::{Digest, Sha1};
        Ok(Sha1::digest(self.raw_bytes()?).to_vec())
    }

    /// The rcgen algorithm that both names this key type in a SubjectPublicKeyInfo and says how
    /// it signs.
    pub(crate) fn rcgen_algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            PublicKey::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            PublicKey::P256(_) => &rcgen::PKCS_ECDSA_P256_SHA256,
            PublicKey::P384(_) => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// A key as rcgen sees it: public data plus (for issuers) a signer. rcgen's own key pairs need
/// ring or aws-lc (C code, no wasm32-wasip2 build), so signing is done here with the RustCrypto
/// crates through rcgen's `SigningKey` trait.
pub(crate) struct RcgenKey<'a> {
    private: Option<&'a PrivateKey>,
    raw_public: Vec<u8>,
    algorithm: &'static rcgen::SignatureAlgorithm,
}

impl<'a> RcgenKey<'a> {
    pub(crate) fn signer(key: &'a PrivateKey) -> Result<Self, PkiError> {
        let public = key.public_key();
        Ok(Self {
            private: Some(key),
            raw_public: public.raw_bytes()?,
            algorithm: public.rcgen_algorithm(),
        })
    }

    pub(crate) fn public(key: &PublicKey) -> Result<RcgenKey<'static>, PkiError> {
        Ok(RcgenKey {
            private: None,
            raw_public: key.raw_bytes()?,
            algorithm: key.rcgen_algorithm(),
        })
    }
}

impl rcgen::PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.raw_public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

impl rcgen::SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let key = self.private.ok_or(rcgen::Error::RemoteKeyError)?;
        key.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}
