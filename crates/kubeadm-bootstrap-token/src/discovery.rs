//! The checks `join` makes on what token discovery fetched (spec §6.3 steps 2-5), with kubeadm's
//! messages: the cluster-info ConfigMap must hold a kubeconfig signed for the token, and the CA
//! in it must match one of the pins the user gave.

use crate::cluster_info::{self, KUBECONFIG_KEY, jws_key, verify_detached_jws};
use crate::{Error, Token, join};
use serde_json::Value;

/// Why discovery cannot trust what it fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error(
        "there is no {KUBECONFIG_KEY} key in the cluster-info ConfigMap. This API Server isn't set up \
         for token bootstrapping, can't connect"
    )]
    NoKubeconfig,
    #[error(
        "token id {0:?} is invalid for this cluster or it has expired. Use \"wasmadm token create\" on \
         the control-plane node to create a new valid token"
    )]
    NoSignature(String),
    #[error("failed to verify JWS signature of received cluster info object, can't trust this API Server")]
    BadSignature,
    #[error(
        "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys {:?} are \
         pinned (check --discovery-token-ca-cert-hash against the pin `wasmadm init` printed)",
        .0.join(":")
    )]
    NotPinned(Vec<String>),
    #[error(
        "invalid CA pin {0:?}: expected \"sha256:<64 hex digits>\", as printed by `wasmadm init` \
         or computed from ca.crt's public key"
    )]
    BadPin(String),
    #[error(transparent)]
    Kubeconfig(#[from] Error),
}

/// The kubeconfig of a fetched cluster-info ConfigMap, once its signature for `token` verifies.
pub fn verified_kubeconfig(config_map: &Value, token: &Token) -> Result<String, DiscoveryError> {
    let kubeconfig = config_map["data"][KUBECONFIG_KEY]
        .as_str()
        .ok_or(DiscoveryError::NoKubeconfig)?;
    let jws = config_map["data"][jws_key(&token.id)]
        .as_str()
        .ok_or_else(|| DiscoveryError::NoSignature(token.id.clone()))?;
    if !verify_detached_jws(kubeconfig, token, jws) {
        return Err(DiscoveryError::BadSignature);
    }
    cluster_info::kubeconfig_cluster(kubeconfig)?;
    Ok(kubeconfig.to_string())
}

/// Normalises a pin (`SHA256:ABCD...` is accepted, as in kubeadm) or says what is wrong with it.
pub fn parse_pin(pin: &str) -> Result<String, DiscoveryError> {
    let bad = || DiscoveryError::BadPin(pin.to_string());
    let (format, hex) = pin.split_once(':').ok_or_else(bad)?;
    if !format.eq_ignore_ascii_case("sha256")
        || hex.len() != 64
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad());
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// Succeeds when a CA certificate of the bundle matches one of `pins`.
pub fn check_ca_pins(ca_pem: &[u8], pins: &[String]) -> Result<(), DiscoveryError> {
    let wanted = pins.iter().map(|p| parse_pin(p)).collect::<Result<Vec<_>, _>>()?;
    let actual = join::ca_pins(ca_pem)?;
    if actual.iter().any(|a| wanted.contains(a)) {
        Ok(())
    } else {
        Err(DiscoveryError::NotPinned(actual))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vector() -> (Token, Value) {
        let v: Value = serde_json::from_str(include_str!("../testdata/jws-vector.json")).expect("JSON");
        let token = Token::parse(v["token"].as_str().expect("token")).expect("token");
        let cm = json!({"data": {"kubeconfig": v["kubeconfig"], "jws-kubeconfig-abcdef": v["jws-kubeconfig-abcdef"]}});
        (token, cm)
    }

    #[test]
    fn accepts_the_signed_cluster_info_and_its_pinned_ca() {
        let (token, cm) = vector();
        let kubeconfig = verified_kubeconfig(&cm, &token).expect("verifies");
        let (_, ca) = cluster_info::kubeconfig_cluster(&kubeconfig).expect("cluster");
        let pin = join::ca_pins(&ca).expect("pin").remove(0);
        check_ca_pins(&ca, &[pin.to_uppercase().replacen("SHA256", "sha256", 1)]).expect("pinned");
        let other = format!("sha256:{}", "0".repeat(64));
        assert_eq!(
            check_ca_pins(&ca, &[other]),
            Err(DiscoveryError::NotPinned(vec![pin]))
        );
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        let (token, cm) = vector();
        let wrong = Token::parse("abcdef.0123456789abcdee").expect("token");
        assert_eq!(
            verified_kubeconfig(&cm, &wrong),
            Err(DiscoveryError::BadSignature)
        );
        let unknown = Token::parse("zzzzzz.0123456789abcdef").expect("token");
        let err = verified_kubeconfig(&cm, &unknown).expect_err("unsigned");
        assert!(
            err.to_string().contains("token id \"zzzzzz\" is invalid"),
            "{err}"
        );
        let mut tampered = cm.clone();
        tampered["data"]["kubeconfig"] = "apiVersion: v1\n".into();
        assert_eq!(
            verified_kubeconfig(&tampered, &token),
            Err(DiscoveryError::BadSignature)
        );
        assert_eq!(
            verified_kubeconfig(&json!({"data": {}}), &token),
            Err(DiscoveryError::NoKubeconfig)
        );
        for bad in ["2ccf", "md5:00", &format!("sha256:{}", "g".repeat(64))] {
            assert_eq!(parse_pin(bad), Err(DiscoveryError::BadPin(bad.to_string())));
        }
    }
}
