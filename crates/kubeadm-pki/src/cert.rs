//! X.509 certificates: building kubeadm's CAs and leaves, and checking existing ones.

use crate::key::{PrivateKey, PublicKey, RcgenKey};
use crate::{PkiError, rng};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, SanType, SerialNumber,
};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry as oids;

/// How far back a new certificate's notBefore is set, so that a node whose clock is a little
/// behind still accepts it (kubeadm's `CertificateBackdate`, 1.31+).
pub const BACKDATE: Duration = Duration::minutes(5);

/// An extended key usage kubeadm puts on its leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    ServerAuth,
    ClientAuth,
}

/// What a leaf certificate must say: kubeadm's `CertConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertSpec {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub usages: Vec<Usage>,
}

impl CertSpec {
    /// Removes duplicate SANs as kubeadm's `RemoveDuplicateAltNames` does: DNS names sorted
    /// and unique, IPs unique in their first order. The console line shows them in this order.
    pub fn dedup_alt_names(&mut self) {
        self.dns_names.sort();
        self.dns_names.dedup();
        let mut seen = Vec::new();
        self.ips.retain(|ip| {
            if seen.contains(ip) {
                false
            } else {
                seen.push(*ip);
                true
            }
        });
    }

    pub fn has_server_auth(&self) -> bool {
        self.usages.contains(&Usage::ServerAuth)
    }
}

/// A parsed, DER-held certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
}

/// A Go-compatible name value: PrintableString when the text allows it (as Go's encoder
/// chooses), otherwise UTF8String. Leaves copy their issuer name from the CA's subject
/// byte-for-byte, which Go's chain building requires.
fn dn_value(text: &str) -> DnValue {
    match rcgen::string::PrintableString::try_from(text) {
        Ok(p) => DnValue::PrintableString(p),
        Err(_) => DnValue::Utf8String(text.to_string()),
    }
}

fn distinguished_name(common_name: &str, organizations: &[String]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    // Go's pkix.Name orders O before CN.
    for o in organizations {
        dn.push(DnType::OrganizationName, dn_value(o));
    }
    dn.push(DnType::CommonName, dn_value(common_name));
    dn
}

fn dns_san(name: &str) -> Result<SanType, PkiError> {
    rcgen::string::Ia5String::try_from(name.to_string())
        .map(SanType::DnsName)
        .map_err(|e| PkiError::InvalidName(format!("{name:?}: {e}")))
}

fn rcgen_err(e: rcgen::Error) -> PkiError {
    PkiError::Signing(e.to_string())
}

impl Certificate {
    /// Wraps DER bytes after checking they parse as a certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, PkiError> {
        x509_parser::parse_x509_certificate(&der).map_err(|e| PkiError::Certificate(e.to_string()))?;
        Ok(Self { der })
    }

    /// Parses the first `CERTIFICATE` block of a PEM file (a chain's leaf). Other blocks are
    /// ignored; a file without one is an error, as in Go's `certutil.ParseCertsPEM`.
    pub fn from_pem(data: &[u8]) -> Result<Self, PkiError> {
        let blocks = pem::parse_many(data).map_err(|e| PkiError::Pem(e.to_string()))?;
        let block = blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| {
                PkiError::Pem("data does not contain any valid RSA or ECDSA certificates".into())
            })?;
        Self::from_der(block.into_contents())
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn to_pem(&self) -> String {
        pem::encode_config(
            &pem::Pem::new("CERTIFICATE", self.der.clone()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    fn parsed(&self) -> Result<X509Certificate<'_>, PkiError> {
        x509_parser::parse_x509_certificate(&self.der)
            .map(|(_, c)| c)
            .map_err(|e| PkiError::Certificate(e.to_string()))
    }

    /// Makes a self-signed CA the way kubeadm's `NewCertificateAuthority` does.
    pub fn new_ca(
        common_name: &str,
        key: &PrivateKey,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        let public = key.public_key();
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name, &[]);
        params.serial_number = Some(SerialNumber::from(rng::serial()));
        params.not_before = now - BACKDATE;
        params.not_after = now + validity;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        // client-go's NewSelfSignedCACert puts the CN in the DNS SANs too.
        params.subject_alt_names = vec![dns_san(common_name)?];
        params.key_identifier_method = KeyIdMethod::PreSpecified(public.key_identifier()?);
        let signer = RcgenKey::signer(key)?;
        let cert = params.self_signed(&signer).map_err(rcgen_err)?;
        Self::from_der(cert.der().to_vec())
    }

    /// Makes a leaf signed by `ca` the way kubeadm's `NewSignedCert` does: KeyUsage
    /// DigitalSignature|KeyEncipherment, the spec's extended usages, BasicConstraints CA:FALSE,
    /// an Authority Key Identifier equal to the CA's Subject Key Identifier, no SKI.
    /// notAfter never passes the CA's own notAfter.
    pub fn new_signed(
        spec: &CertSpec,
        public: &PublicKey,
        ca: &Certificate,
        ca_key: &PrivateKey,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        if spec.common_name.is_empty() {
            return Err(PkiError::InvalidName("must specify a CommonName".into()));
        }
        if spec.usages.is_empty() {
            return Err(PkiError::InvalidName(
                "must specify at least one ExtKeyUsage".into(),
            ));
        }
        let ca_parsed = ca.parsed()?;
        let ca_not_after = OffsetDateTime::from_unix_timestamp(ca_parsed.validity().not_after.timestamp())
            .map_err(|e| PkiError::Certificate(e.to_string()))?;
        let issuer = Issuer::new(ca.issuer_params()?, RcgenKey::signer(ca_key)?);

        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&spec.common_name, &spec.organizations);
        params.serial_number = Some(SerialNumber::from(rng::serial()));
        params.not_before = now - BACKDATE;
        params.not_after = std::cmp::min(now + validity, ca_not_after);
        // `NoCa` plus an explicit extension rather than `ExplicitNoCa`: rcgen would add a Subject
        // Key Identifier with the latter, and kubeadm's leaves have none.
        params.is_ca = IsCa::NoCa;
        let mut bc = CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
        bc.set_criticality(true);
        params.custom_extensions = vec![bc];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = spec
            .usages
            .iter()
            .map(|u| match u {
                Usage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                Usage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            })
            .collect();
        let mut sans = Vec::new();
        for name in &spec.dns_names {
            sans.push(dns_san(name)?);
        }
        sans.extend(spec.ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.subject_alt_names = sans;
        params.use_authority_key_identifier_extension = true;
        let subject = RcgenKey::public(public)?;
        let cert = params.signed_by(&subject, &issuer).map_err(rcgen_err)?;
        let cert = Self::from_der(cert.der().to_vec())?;
        // The issuer name was re-encoded from the CA's subject; Go chains by exact bytes, so a
        // CA whose name could not be reproduced must fail here, not in the API server.
        cert.verify_signed_by(ca)?;
        Ok(cert)
    }

    /// What rcgen needs to know about this certificate as an issuer: its subject name (same
    /// string types, so the leaf's issuer bytes equal the CA's subject bytes) and its key
    /// identifier (the SKI it carries, or Go's SHA-1 method when it has none).
    fn issuer_params(&self) -> Result<CertificateParams, PkiError> {
        use x509_parser::extensions::ParsedExtension;
        let c = self.parsed()?;
        let mut dn = DistinguishedName::new();
        for rdn in c.subject().iter() {
            for attr in rdn.iter() {
                let oid = attr.attr_type();
                let ty = if *oid == oids::OID_X509_COMMON_NAME {
                    DnType::CommonName
                } else if *oid == oids::OID_X509_ORGANIZATION_NAME {
                    DnType::OrganizationName
                } else if *oid == oids::OID_X509_ORGANIZATIONAL_UNIT {
                    DnType::OrganizationalUnitName
                } else if *oid == oids::OID_X509_COUNTRY_NAME {
                    DnType::CountryName
                } else if *oid == oids::OID_X509_LOCALITY_NAME {
                    DnType::LocalityName
                } else if *oid == oids::OID_X509_STATE_OR_PROVINCE_NAME {
                    DnType::StateOrProvinceName
                } else {
                    let arcs = oid
                        .iter()
                        .ok_or_else(|| PkiError::Certificate(format!("unsupported name attribute {oid}")))?
                        .collect();
                    DnType::CustomDnType(arcs)
                };
                let value = attr.attr_value();
                let text = || {
                    std::str::from_utf8(value.data)
                        .map(str::to_string)
                        .map_err(|e| PkiError::Certificate(format!("name attribute {oid}: {e}")))
                };
                use x509_parser::der_parser::asn1_rs::Tag;
                let v = match value.header.tag() {
                    Tag::PrintableString => DnValue::PrintableString(
                        rcgen::string::PrintableString::try_from(text()?)
                            .map_err(|e| PkiError::Certificate(e.to_string()))?,
                    ),
                    Tag::Utf8String => DnValue::Utf8String(text()?),
                    Tag::Ia5String => DnValue::Ia5String(
                        rcgen::string::Ia5String::try_from(text()?)
                            .map_err(|e| PkiError::Certificate(e.to_string()))?,
                    ),
                    t => {
                        return Err(PkiError::Certificate(format!(
                            "CA subject attribute {oid} has string type {t:?}, which cannot be reproduced"
                        )));
                    }
                };
                dn.push(ty, v);
            }
        }
        let ski = c.iter_extensions().find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        });
        let ski = match ski {
            Some(s) => s,
            None => self.public_key()?.key_identifier()?,
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        Ok(params)
    }

    /// The subject's common name ("" when it has none).
    pub fn common_name(&self) -> Result<String, PkiError> {
        let c = self.parsed()?;
        Ok(c.subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_string())
    }

    pub fn is_ca(&self) -> Result<bool, PkiError> {
        Ok(self.parsed()?.is_ca())
    }

    /// (notBefore, notAfter) as Unix seconds.
    pub fn validity(&self) -> Result<(i64, i64), PkiError> {
        let c = self.parsed()?;
        Ok((
            c.validity().not_before.timestamp(),
            c.validity().not_after.timestamp(),
        ))
    }

    /// The DER SubjectPublicKeyInfo, exactly as in the certificate.
    pub fn spki_der(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.parsed()?.public_key().raw.to_vec())
    }

    pub fn public_key(&self) -> Result<PublicKey, PkiError> {
        PublicKey::from_spki_der(&self.spki_der()?)
    }

    /// The DNS names and IP addresses of the Subject Alternative Name extension.
    pub fn alt_names(&self) -> Result<(Vec<String>, Vec<IpAddr>), PkiError> {
        let c = self.parsed()?;
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        if let Some(san) = c
            .subject_alternative_name()
            .map_err(|e| PkiError::Certificate(e.to_string()))?
        {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => dns.push(d.to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                            ips.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                            ips.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok((dns, ips))
    }

    /// Checks that the validity window contains `now`, with Go's wording.
    pub fn check_period(&self, now: OffsetDateTime) -> Result<(), PkiError> {
        let (nb, na) = self.validity()?;
        let t = now.unix_timestamp();
        let fmt = |s: i64| {
            OffsetDateTime::from_unix_timestamp(s)
                .map(|d| d.to_string())
                .unwrap_or_else(|_| s.to_string())
        };
        if t > na {
            return Err(PkiError::Expired(format!(
                "the certificate has expired: NotBefore: {}, NotAfter: {}",
                fmt(nb),
                fmt(na)
            )));
        }
        if t < nb {
            return Err(PkiError::NotYetValid(format!(
                "the certificate is not valid yet: NotBefore: {}, NotAfter: {}",
                fmt(nb),
                fmt(na)
            )));
        }
        Ok(())
    }

    /// Verifies that `issuer` signed this certificate: names chain, the issuer is a CA, and the
    /// signature checks out with the issuer's key.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), PkiError> {
        let c = self.parsed()?;
        let i = issuer.parsed()?;
        if c.issuer().as_raw() != i.subject().as_raw() {
            return Err(PkiError::Verification(format!(
                "issuer \"{}\" is not the CA's subject \"{}\"",
                c.issuer(),
                i.subject()
            )));
        }
        if !i.is_ca() {
            return Err(PkiError::Verification(
                "the issuing certificate is not a CA".into(),
            ));
        }
        let key = issuer.public_key()?;
        verify_signature(
            &key,
            &c.signature_algorithm.algorithm,
            c.tbs_certificate.as_ref(),
            &c.signature_value.data,
        )
    }

    /// True when `key` is this certificate's private key.
    pub fn matches_key(&self, key: &PrivateKey) -> Result<bool, PkiError> {
        Ok(self.public_key()? == key.public_key())
    }

    /// Checks that the certificate covers every DNS name and IP of `spec`, as kubeadm's
    /// `validateCertificateWithConfig` does with `VerifyHostname` (wildcards match one label).
    pub fn check_covers(&self, spec: &CertSpec) -> Result<(), PkiError> {
        let (dns, ips) = self.alt_names()?;
        let valid_for = || {
            let mut all: Vec<String> = dns.clone();
            all.extend(ips.iter().map(|i| i.to_string()));
            all.join(", ")
        };
        for ip in &spec.ips {
            if !ips.contains(ip) {
                return Err(PkiError::Verification(format!(
                    "x509: certificate is valid for {}, not {ip}",
                    valid_for()
                )));
            }
        }
        for name in &spec.dns_names {
            if !dns.iter().any(|d| hostname_matches(d, name)) {
                return Err(PkiError::Verification(format!(
                    "x509: certificate is valid for {}, not {name}",
                    valid_for()
                )));
            }
        }
        Ok(())
    }

    /// The public-key pin `join` checks: `sha256:<hex of the SubjectPublicKeyInfo DER>`.
    pub fn spki_pin(&self) -> Result<String, PkiError> {
        use sha2::{Digest, Sha256};
        Ok(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(self.spki_der()?))
        ))
    }
}

/// Case-insensitive host name match; a `*.` pattern matches exactly one leading label.
fn hostname_matches(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    if p == h {
        return true;
    }
    match (p.strip_prefix("*."), h.split_once('.')) {
        (Some(rest), Some((label, host_rest))) => !label.is_empty() && rest == host_rest,
        _ => false,
    }
}

fn verify_signature(
    key: &PublicKey,
    alg: &x509_parser::der_parser::oid::Oid<'_>,
    tbs: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    use rsa::signature::hazmat::PrehashVerifier;
    use sha2::Digest;
    let bad = |e: String| PkiError::Verification(format!("signature check failed: {e}"));
    let digest: Vec<u8> = if *alg == oids::OID_PKCS1_SHA256WITHRSA || *alg == oids::OID_SIG_ECDSA_WITH_SHA256
    {
        sha2::Sha256::digest(tbs).to_vec()
    } else if *alg == oids::OID_PKCS1_SHA384WITHRSA || *alg == oids::OID_SIG_ECDSA_WITH_SHA384 {
        sha2::Sha384::digest(tbs).to_vec()
    } else if *alg == oids::OID_PKCS1_SHA512WITHRSA || *alg == oids::OID_SIG_ECDSA_WITH_SHA512 {
        sha2::Sha512::digest(tbs).to_vec()
    } else {
        return Err(bad(format!("unsupported signature algorithm {alg}")));
    };
    match key {
        PublicKey::Rsa(k) => {
            let scheme = match digest.len() {
                32 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                48 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                _ => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
            };
            k.verify(scheme, &digest, signature)
                .map_err(|e| bad(e.to_string()))
        }
        PublicKey::P256(k) => {
            let sig = p256::ecdsa::Signature::from_der(signature).map_err(|e| bad(e.to_string()))?;
            p256::ecdsa::VerifyingKey::from(k)
                .verify_prehash(&digest, &sig)
                .map_err(|e| bad(e.to_string()))
        }
        PublicKey::P384(k) => {
            let sig = p384::ecdsa::Signature::from_der(signature).map_err(|e| bad(e.to_string()))?;
            p384::ecdsa::VerifyingKey::from(k)
                .verify_prehash(&digest, &sig)
                .map_err(|e| bad(e.to_string()))
        }
    }
}
