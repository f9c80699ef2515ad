//! Where the API server is reached: kubeadm's `GetControlPlaneEndpoint` and friends, shared by
//! every phase that writes a server URL (kubeconfigs, manifests, cluster-info, the join command).

use std::net::IpAddr;

/// `host:port`, with brackets around an IPv6 host (Go's `net.JoinHostPort`).
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// kubeadm's `GetControlPlaneEndpoint` for a `controlPlaneEndpoint`: `https://host:port`, with
/// `bind_port` when the endpoint has no port of its own. The error names the field.
pub fn control_plane_url(endpoint: &str, bind_port: u16) -> Result<String, String> {
    let invalid = || format!("controlPlaneEndpoint: {endpoint:?} is not a valid host or host:port");
    let (host, port) = if let Some(rest) = endpoint.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
        (host, after.strip_prefix(':').unwrap_or_default())
    } else if endpoint.parse::<IpAddr>().is_ok() {
        (endpoint, "")
    } else {
        endpoint.rsplit_once(':').unwrap_or((endpoint, ""))
    };
    let port = if port.is_empty() {
        bind_port
    } else {
        port.parse().map_err(|_| invalid())?
    };
    if host.is_empty() {
        return Err(invalid());
    }
    Ok(format!("https://{}", join_host_port(host, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_as_kubeadm_joins_them() {
        assert_eq!(join_host_port("fd00::1", 6443), "[fd00::1]:6443");
        assert_eq!(join_host_port("10.0.0.1", 6443), "10.0.0.1:6443");
        assert_eq!(
            control_plane_url("lb.example", 6443).as_deref(),
            Ok("https://lb.example:6443")
        );
        assert_eq!(
            control_plane_url("lb.example:443", 6443).as_deref(),
            Ok("https://lb.example:443")
        );
        assert_eq!(
            control_plane_url("fd00::1", 6443).as_deref(),
            Ok("https://[fd00::1]:6443")
        );
        assert_eq!(
            control_plane_url("[fd00::1]:8443", 6443).as_deref(),
            Ok("https://[fd00::1]:8443")
        );
        assert!(
            control_plane_url(":6443", 6443)
                .unwrap_err()
                .contains("controlPlaneEndpoint")
        );
        assert!(control_plane_url("lb:port", 6443).is_err());
    }
}
