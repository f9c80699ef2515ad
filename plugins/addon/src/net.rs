//! Addresses the addons are configured with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// kubeadm's `GetDNSIP`: the 10th address of the (first) service subnet, e.g. `10.96.0.10` for
/// `10.96.0.0/12`.
pub fn dns_ip(service_subnet: &str) -> Result<IpAddr, String> {
    let first = service_subnet.split(',').next().unwrap_or_default().trim();
    let bad = |why: &str| format!("networking.serviceSubnet: {first:?} {why}");
    let (addr, bits) = first
        .split_once('/')
        .ok_or_else(|| bad("is not a CIDR (address/prefix)"))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| bad("does not start with an IP address"))?;
    let bits: u32 = bits.parse().map_err(|_| bad("has an invalid prefix length"))?;
    let width = if addr.is_ipv4() { 32 } else { 128 };
    if bits > width || width - bits < 4 {
        return Err(bad(
            "is too small to hold the DNS service address (its 10th address)",
        ));
    }
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits) >> (128 - width)
    };
    Ok(match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(((u32::from(a) as u128 & mask) + 10) as u32)),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from((u128::from(a) & mask) + 10)),
    })
}

/// `https://host:port` of the API server the kube-proxy pods talk to: kubeadm's
/// `GetControlPlaneEndpoint` (`controlPlaneEndpoint`, its port defaulting to `bindPort`; else
/// the advertise address and bind port).
pub fn api_server_url(
    control_plane_endpoint: &str,
    advertise: &str,
    bind_port: u16,
) -> Result<String, String> {
    let (host, port) = if control_plane_endpoint.is_empty() {
        (advertise, None)
    } else if let Some(rest) = control_plane_endpoint.strip_prefix('[') {
        let (h, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("controlPlaneEndpoint: {control_plane_endpoint:?} has an unclosed '['"))?;
        (h, tail.strip_prefix(':'))
    } else if control_plane_endpoint.parse::<IpAddr>().is_ok() {
        (control_plane_endpoint, None)
    } else {
        match control_plane_endpoint.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (control_plane_endpoint, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| {
            format!("controlPlaneEndpoint: {control_plane_endpoint:?} has an invalid port {p:?}")
        })?,
        None => bind_port,
    };
    if host.is_empty() {
        return Err(
            "no API server address: set localAPIEndpoint.advertiseAddress or controlPlaneEndpoint".into(),
        );
    }
    Ok(if host.contains(':') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenth_address() {
        assert_eq!(
            dns_ip("10.96.0.0/12").map(|i| i.to_string()),
            Ok("10.96.0.10".into())
        );
        assert_eq!(
            dns_ip("10.96.5.7/16").map(|i| i.to_string()),
            Ok("10.96.0.10".into())
        );
        assert_eq!(
            dns_ip("fd00::/108,10.0.0.0/16").map(|i| i.to_string()),
            Ok("fd00::a".into())
        );
        assert!(dns_ip("10.0.0.0/30").is_err());
        assert!(dns_ip("nope").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            api_server_url("", "10.200.0.2", 6443),
            Ok("https://10.200.0.2:6443".into())
        );
        assert_eq!(
            api_server_url("lb:7443", "1.2.3.4", 6443),
            Ok("https://lb:7443".into())
        );
        assert_eq!(
            api_server_url("lb", "1.2.3.4", 6443),
            Ok("https://lb:6443".into())
        );
        assert_eq!(
            api_server_url("fd00::1", "", 6443),
            Ok("https://[fd00::1]:6443".into())
        );
        assert!(api_server_url("", "", 6443).is_err());
    }
}
