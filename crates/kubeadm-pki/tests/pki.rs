//! The PKI crate on its own: keys round-trip through kubeadm's PEM formats, CAs and leaves carry
//! kubeadm's extensions, and the reuse checks (chain, key, SANs, period, pin) say no when they should.

use kubeadm_pki::kubeadm::{self, NodeFacts};
use kubeadm_pki::{CertSpec, Certificate, KeyAlgorithm, PrivateKey, PublicKey, Usage};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn spec() -> CertSpec {
    CertSpec {
        common_name: "kube-apiserver".into(),
        dns_names: vec!["kubernetes".into(), "n1".into(), "*.example.com".into()],
        ips: vec!["10.96.0.1".parse().unwrap(), "::1".parse().unwrap()],
        usages: vec![Usage::ServerAuth],
        ..CertSpec::default()
    }
}

#[test]
fn algorithm_names() {
    assert_eq!("".parse::<KeyAlgorithm>().unwrap(), KeyAlgorithm::Rsa2048);
    assert_eq!(
        "ECDSA-P384".parse::<KeyAlgorithm>().unwrap(),
        KeyAlgorithm::EcdsaP384
    );
    let err = "RSA-1024".parse::<KeyAlgorithm>().unwrap_err().to_string();
    assert!(err.contains("RSA-1024") && err.contains("ECDSA-P256"), "{err}");
}

#[test]
fn keys_round_trip_through_kubeadm_pem_formats() {
    for (alg, tag) in [
        (KeyAlgorithm::Rsa2048, "RSA PRIVATE KEY"),
        (KeyAlgorithm::EcdsaP256, "EC PRIVATE KEY"),
        (KeyAlgorithm::EcdsaP384, "EC PRIVATE KEY"),
    ] {
        let key = PrivateKey::generate(alg).unwrap();
        assert_eq!(key.description(), alg.name());
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with(&format!("-----BEGIN {tag}-----\n")), "{pem}");
        let back = PrivateKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let pubpem = key.public_key().to_pem().unwrap();
        assert!(pubpem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::from_pem(pubpem.as_bytes()).unwrap(), key.public_key());
    }
}

#[test]
fn garbage_is_not_a_key_or_certificate() {
    assert!(PrivateKey::from_pem(b"garbage").is_err());
    assert!(Certificate::from_pem(b"garbage").is_err());
    let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(Certificate::from_pem(bad.as_bytes()).is_err());
}

#[test]
fn ca_and_leaf_have_kubeadms_shape() {
    for alg in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
    ] {
        let t = now();
        let ca_key = PrivateKey::generate(alg).unwrap();
        let ca = Certificate::new_ca("kubernetes", &ca_key, Duration::hours(87600), t).unwrap();
        assert!(ca.is_ca().unwrap());
        assert_eq!(ca.common_name().unwrap(), "kubernetes");
        assert_eq!(ca.alt_names().unwrap().0, vec!["kubernetes".to_string()]);
        let (nb, na) = ca.validity().unwrap();
        assert_eq!(nb, (t - Duration::minutes(5)).unix_timestamp());
        assert_eq!(na, (t + Duration::hours(87600)).unix_timestamp());
        ca.verify_signed_by(&ca).unwrap();
        assert!(ca.matches_key(&ca_key).unwrap());

        let key = PrivateKey::generate(alg).unwrap();
        let leaf =
            Certificate::new_signed(&spec(), &key.public_key(), &ca, &ca_key, Duration::hours(8760), t)
                .unwrap();
        assert!(!leaf.is_ca().unwrap());
        leaf.verify_signed_by(&ca).unwrap();
        assert!(leaf.matches_key(&key).unwrap());
        assert!(!leaf.matches_key(&ca_key).unwrap());
        leaf.check_covers(&spec()).unwrap();
        leaf.check_period(t).unwrap();
        let (nb, na) = leaf.validity().unwrap();
        assert_eq!(nb, (t - Duration::minutes(5)).unix_timestamp());
        assert_eq!(na, (t + Duration::hours(8760)).unix_timestamp());
        // A leaf from another CA is refused.
        let other_key = PrivateKey::generate(alg).unwrap();
        let other = Certificate::new_ca("kubernetes", &other_key, Duration::hours(1), t).unwrap();
        assert!(leaf.verify_signed_by(&other).is_err());
        // Round trip through PEM.
        assert_eq!(Certificate::from_pem(leaf.to_pem().as_bytes()).unwrap(), leaf);
    }
}

#[test]
fn leaf_never_outlives_its_ca() {
    let t = now();
    let ca_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let ca = Certificate::new_ca("etcd-ca", &ca_key, Duration::hours(10), t).unwrap();
    let leaf = Certificate::new_signed(
        &spec(),
        &ca_key.public_key(),
        &ca,
        &ca_key,
        Duration::hours(8760),
        t,
    )
    .unwrap();
    assert_eq!(leaf.validity().unwrap().1, ca.validity().unwrap().1);
}

#[test]
fn coverage_period_and_pin_checks() {
    let t = now();
    let ca_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let ca = Certificate::new_ca("kubernetes", &ca_key, Duration::hours(1), t).unwrap();
    let leaf =
        Certificate::new_signed(&spec(), &ca_key.public_key(), &ca, &ca_key, Duration::hours(1), t).unwrap();
    let mut wider = spec();
    wider.dns_names.push("api.example.org".into());
    let err = leaf.check_covers(&wider).unwrap_err().to_string();
    assert!(err.contains("not api.example.org"), "{err}");
    let mut wildcard = spec();
    wildcard.dns_names = vec!["a.example.com".into()];
    leaf.check_covers(&wildcard).unwrap();
    wildcard.dns_names = vec!["a.b.example.com".into()];
    assert!(leaf.check_covers(&wildcard).is_err());
    let mut ip = spec();
    ip.ips.push("10.0.0.9".parse().unwrap());
    assert!(leaf.check_covers(&ip).is_err());

    assert!(
        leaf.check_period(t + Duration::hours(2))
            .unwrap_err()
            .to_string()
            .contains("expired")
    );
    assert!(
        leaf.check_period(t - Duration::hours(1))
            .unwrap_err()
            .to_string()
            .contains("not valid yet")
    );

    let pin = ca.spki_pin().unwrap();
    assert!(pin.starts_with("sha256:") && pin.len() == 7 + 64, "{pin}");
    let spki = ca.spki_der().unwrap();
    use sha2::Digest;
    assert_eq!(
        pin,
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&spki)))
    );
}

#[test]
fn serials_are_in_kubeadms_range() {
    for _ in 0..1000 {
        let s = kubeadm_pki::rng::serial();
        assert!((1..(1u64 << 63) - 1).contains(&s));
    }
}

#[test]
fn kubeadm_sans() {
    let mut cluster = kubeadm_config::ClusterConfiguration::default();
    kubeadm_config::defaults::cluster_configuration(&mut cluster);
    cluster.control_plane_endpoint = "lb.example.com:6443".into();
    cluster.api_server.cert_sans = vec![
        "10.0.0.5".into(),
        "Bad_Name".into(),
        "*.apps.example.com".into(),
        "n1".into(),
    ];
    let facts = NodeFacts {
        node_name: "n1",
        advertise_address: Some("10.200.0.2".parse().unwrap()),
        cluster: &cluster,
    };
    let (spec, warnings) = kubeadm::leaf_spec(kubeadm::def("apiserver").unwrap(), &facts).unwrap();
    assert_eq!(
        spec.dns_names,
        [
            "*.apps.example.com",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "lb.example.com",
            "n1"
        ]
    );
    let ips: Vec<IpAddr> = ["10.96.0.1", "10.200.0.2", "10.0.0.5"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(spec.ips, ips);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("'Bad_Name'"), "{warnings:?}");

    let (etcd, _) = kubeadm::leaf_spec(kubeadm::def("etcd-peer").unwrap(), &facts).unwrap();
    assert_eq!(etcd.common_name, "n1");
    assert_eq!(etcd.dns_names, ["localhost", "n1"]);
    assert_eq!(
        etcd.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        ["10.200.0.2", "127.0.0.1", "::1"]
    );

    assert_eq!(
        kubeadm::api_server_virtual_ip("fd00:10:96::/112,10.96.0.0/12")
            .unwrap()
            .to_string(),
        "fd00:10:96::1"
    );
    assert!(kubeadm::api_server_virtual_ip("nonsense").is_err());
}
