//! Validation of a defaulted configuration. Every error names the field (kubeadm's path, e.g.
//! `localAPIEndpoint.advertiseAddress`) and says what a valid value looks like.

use crate::types::*;
use std::net::IpAddr;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// kubeadm's field path, e.g. `networking.serviceSubnet`.
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The encryption algorithms v1beta4 accepts.
pub const ENCRYPTION_ALGORITHMS: [&str; 5] = ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"];

/// Parses a Go duration (`1h30m`, `4m0s`, `500ms`) into seconds.
pub fn parse_duration(text: &str) -> Option<f64> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Checks an IP CIDR such as `10.96.0.0/12` or `fd00::/108`.
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = text.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn check_cidrs(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    for part in value.split(',').filter(|p| !p.is_empty()) {
        if parse_cidr(part.trim()).is_none() {
            errors.push(err(
                field,
                format!("{part:?} is not a valid CIDR (expected e.g. 10.96.0.0/12)"),
            ));
        }
    }
}

fn check_duration(field: &str, value: &Option<String>, errors: &mut Vec<FieldError>) {
    if let Some(v) = value
        && parse_duration(v).is_none()
    {
        errors.push(err(
            field,
            format!("{v:?} is not a valid duration (expected e.g. 4m0s, 1h30m)"),
        ));
    }
}

fn check_timeouts(prefix: &str, t: &Timeouts, errors: &mut Vec<FieldError>) {
    let fields = [
        (
            "controlPlaneComponentHealthCheck",
            &t.control_plane_component_health_check,
        ),
        ("kubeletHealthCheck", &t.kubelet_health_check),
        ("kubernetesAPICall", &t.kubernetes_api_call),
        ("etcdAPICall", &t.etcd_api_call),
        ("tlsBootstrap", &t.tls_bootstrap),
        ("discovery", &t.discovery),
        ("upgradeManifests", &t.upgrade_manifests),
    ];
    for (name, value) in fields {
        check_duration(&format!("{prefix}.{name}"), value, errors);
    }
}

/// Validates `--ignore-preflight-errors` values: `all` must stand alone.
pub fn ignore_preflight_errors(field: &str, values: &[String]) -> Result<(), FieldError> {
    let has_all = values.iter().any(|v| v.eq_ignore_ascii_case("all"));
    if has_all && values.len() > 1 {
        return Err(err(
            field,
            format!(
                "don't specify individual checks if 'all' is used: {}",
                values.join(",")
            ),
        ));
    }
    Ok(())
}

fn check_node_registration(prefix: &str, n: &NodeRegistration, errors: &mut Vec<FieldError>) {
    if let Err(e) = ignore_preflight_errors(
        &format!("{prefix}.ignorePreflightErrors"),
        &n.ignore_preflight_errors,
    ) {
        errors.push(e);
    }
    if !n.name.is_empty() && !is_dns1123_subdomain(&n.name) {
        errors.push(err(
            &format!("{prefix}.name"),
            format!(
                "{:?} is not a valid node name: use lower-case letters, digits, '-' and '.', \
                 starting and ending with a letter or digit",
                n.name
            ),
        ));
    }
    for (i, t) in n.taints.iter().flatten().enumerate() {
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&t.effect.as_str()) {
            errors.push(err(
                &format!("{prefix}.taints[{i}].effect"),
                format!(
                    "{:?} is not one of NoSchedule, PreferNoSchedule, NoExecute",
                    t.effect
                ),
            ));
        }
    }
}

/// RFC 1123 subdomain, as Kubernetes object names require.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253
        && !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn check_endpoint(prefix: &str, e: &ApiEndpoint, errors: &mut Vec<FieldError>) {
    if !e.advertise_address.is_empty() && e.advertise_address.parse::<IpAddr>().is_err() {
        errors.push(err(
            &format!("{prefix}.advertiseAddress"),
            format!("{:?} is not a valid IP address", e.advertise_address),
        ));
    }
}

/// Validates an InitConfiguration (defaults applied).
pub fn init_configuration(c: &InitConfiguration) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_node_registration("nodeRegistration", &c.node_registration, &mut errors);
    check_endpoint("localAPIEndpoint", &c.local_api_endpoint, &mut errors);
    check_timeouts("timeouts", &c.timeouts, &mut errors);
    for (i, t) in c.bootstrap_tokens.iter().enumerate() {
        if !t.token.is_empty() && !is_bootstrap_token(&t.token) {
            errors.push(err(
                &format!("bootstrapTokens[{i}].token"),
                format!(
                    "{:?} is not a bootstrap token: expected [a-z0-9]{{6}}.[a-z0-9]{{16}}",
                    t.token
                ),
            ));
        }
        check_duration(&format!("bootstrapTokens[{i}].ttl"), &t.ttl, &mut errors);
    }
    if !c.certificate_key.is_empty()
        && (c.certificate_key.len() != 64 || hex_decode_len(&c.certificate_key).is_none())
    {
        errors.push(err(
            "certificateKey",
            "must be 64 hex characters (32 bytes); `wasmadm certs certificate-key` makes one",
        ));
    }
    errors
}

fn hex_decode_len(text: &str) -> Option<usize> {
    text.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then_some(text.len() / 2)
}

/// `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn is_bootstrap_token(token: &str) -> bool {
    let ok =
        |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    matches!(token.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

/// Validates a ClusterConfiguration (defaults applied).
pub fn cluster_configuration(c: &ClusterConfiguration) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_cidrs(
        "networking.serviceSubnet",
        &c.networking.service_subnet,
        &mut errors,
    );
    check_cidrs("networking.podSubnet", &c.networking.pod_subnet, &mut errors);
    if !ENCRYPTION_ALGORITHMS.contains(&c.encryption_algorithm.as_str()) {
        errors.push(err(
            "encryptionAlgorithm",
            format!(
                "{:?} is not supported; use one of {}",
                c.encryption_algorithm,
                ENCRYPTION_ALGORITHMS.join(", ")
            ),
        ));
    }
    check_duration(
        "certificateValidityPeriod",
        &c.certificate_validity_period,
        &mut errors,
    );
    check_duration(
        "caCertificateValidityPeriod",
        &c.ca_certificate_validity_period,
        &mut errors,
    );
    if c.etcd.local.is_some() && c.etcd.external.is_some() {
        errors.push(err("etcd", "set either etcd.local or etcd.external, not both"));
    }
    if !c.kubernetes_version.starts_with('v') || c.kubernetes_version[1..].split('.').take(3).count() < 2 {
        errors.push(err(
            "kubernetesVersion",
            format!(
                "{:?} is not a version like v1.36.2 (labels such as stable-1 need the network)",
                c.kubernetes_version
            ),
        ));
    }
    errors
}

/// Validates a JoinConfiguration (defaults applied).
pub fn join_configuration(c: &JoinConfiguration) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_node_registration("nodeRegistration", &c.node_registration, &mut errors);
    check_timeouts("timeouts", &c.timeouts, &mut errors);
    if let Some(cp) = &c.control_plane {
        check_endpoint(
            "controlPlane.localAPIEndpoint",
            &cp.local_api_endpoint,
            &mut errors,
        );
    }
    match (&c.discovery.bootstrap_token, &c.discovery.file) {
        (Some(_), Some(_)) => errors.push(err(
            "discovery",
            "set either discovery.bootstrapToken or discovery.file, not both",
        )),
        (Some(bt), None) => {
            if !bt.token.is_empty() && !is_bootstrap_token(&bt.token) {
                errors.push(err(
                    "discovery.bootstrapToken.token",
                    "expected [a-z0-9]{6}.[a-z0-9]{16}",
                ));
            }
            if bt.ca_cert_hashes.is_empty() && !bt.unsafe_skip_ca_verification {
                errors.push(err(
                    "discovery.bootstrapToken.caCertHashes",
                    "give at least one sha256:<hex> CA pin (see `wasmadm token create \
                     --print-join-command`) or set unsafeSkipCAVerification: true",
                ));
            }
            if bt.api_server_endpoint.is_empty() {
                errors.push(err(
                    "discovery.bootstrapToken.apiServerEndpoint",
                    "APIServerEndpoint is not set: give the API server's host:port (the first \
                     argument of `wasmadm join`)",
                ));
            }
        }
        (None, None) => errors.push(err(
            "discovery",
            "bootstrapToken or file must be set: give the API server's host:port and a token \
             (wasmadm join <host:port> --token <token> --discovery-token-ca-cert-hash sha256:<hex>)",
        )),
        _ => {}
    }
    errors
}
