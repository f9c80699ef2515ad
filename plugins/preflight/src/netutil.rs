//! Network helpers that need no socket: listening ports from `/proc/net/tcp{,6}`, CIDRs, and
//! Go's proxy selection rules (`HTTPS_PROXY` / `NO_PROXY`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Ports in state LISTEN in a `/proc/net/tcp` or `/proc/net/tcp6` table.
pub fn listening_ports(table: &str) -> Vec<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            if *state != "0A" {
                return None;
            }
            let port = local.rsplit(':').next()?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// Parses `a.b.c.d/n` or `x::/n`.
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    kubeadm_config_cidr(text)
}

fn kubeadm_config_cidr(text: &str) -> Option<(IpAddr, u8)> {
    wasmadm_plugin_sdk::config::validate::parse_cidr(text.trim())
}

/// The `index`-th address of a CIDR (kubeadm's `GetIndexedIP`).
pub fn indexed_ip(cidr: &str, index: u128) -> Option<IpAddr> {
    let (ip, bits) = parse_cidr(cidr)?;
    Some(match ip {
        IpAddr::V4(v4) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            IpAddr::V4(Ipv4Addr::from((u32::from(v4) & mask).wrapping_add(index as u32)))
        }
        IpAddr::V6(v6) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            IpAddr::V6(Ipv6Addr::from((u128::from(v6) & mask).wrapping_add(index)))
        }
    })
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = parse_cidr(cidr) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// The proxy Go's `http.ProxyFromEnvironment` would use for an `https://host` request, given the
/// environment lookup `env`. None when no proxy applies.
pub fn https_proxy_for(host: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let pick = |a: &str, b: &str| env(a).or_else(|| env(b)).filter(|v| !v.is_empty());
    let proxy = pick("HTTPS_PROXY", "https_proxy")?;
    let no_proxy = pick("NO_PROXY", "no_proxy").unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return None;
    }
    let ip = host.parse::<IpAddr>().ok();
    for entry in no_proxy.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            return None;
        }
        if let Some(ip) = ip {
            if entry.contains('/') && cidr_contains(entry, ip) {
                return None;
            }
            if entry.parse::<IpAddr>().ok() == Some(ip) {
                return None;
            }
            continue;
        }
        let entry = entry.split(':').next().unwrap_or(entry).to_lowercase();
        let host = host.to_lowercase();
        let domain = entry.trim_start_matches('.').trim_start_matches("*.");
        if host == domain || host.ends_with(&format!(".{domain}")) {
            return None;
        }
    }
    Some(proxy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_listeners() {
        let table =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:192B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:0CEA 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1";
        assert_eq!(listening_ports(table), vec![6443]);
    }

    #[test]
    fn indexed_ips() {
        assert_eq!(
            indexed_ip("10.96.0.0/12", 1),
            Some("10.96.0.1".parse().expect("ip"))
        );
        assert_eq!(indexed_ip("fd00::/108", 1), Some("fd00::1".parse().expect("ip")));
    }

    #[test]
    fn no_proxy_rules() {
        let env = |no: &'static str| {
            move |k: &str| match k {
                "HTTPS_PROXY" => Some("http://proxy:3128".to_string()),
                "NO_PROXY" => Some(no.to_string()),
                _ => None,
            }
        };
        assert_eq!(
            https_proxy_for("10.0.0.2", &env("")).as_deref(),
            Some("http://proxy:3128")
        );
        assert_eq!(https_proxy_for("10.0.0.2", &env("10.0.0.0/8")), None);
        assert_eq!(https_proxy_for("10.0.0.2", &env("10.0.0.2")), None);
        assert_eq!(https_proxy_for("api.example.com", &env(".example.com")), None);
        assert_eq!(https_proxy_for("api.example.com", &env("example.com")), None);
        assert!(https_proxy_for("api.example.org", &env("example.com")).is_some());
        assert_eq!(https_proxy_for("127.0.0.1", &env("")), None);
    }
}
