//! The one URL shape a health grant names: `scheme://host:port/path`.

use std::fmt;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed URL of the one shape a grant allows: `scheme://host:port/path`, no user, query or
/// fragment. The host is lower-cased; IPv6 addresses are kept without brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Url {
    /// Parses `text`; `need_port` refuses a URL without an explicit port (grants must be exact).
    pub fn parse(text: &str, need_port: bool) -> Result<Self, String> {
        // Schemes are case-insensitive.
        let prefix = |p: &str| {
            text.get(..p.len())
                .filter(|head| head.eq_ignore_ascii_case(p))
                .map(|_| &text[p.len()..])
        };
        let (scheme, rest) = if let Some(r) = prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(format!("URL {text:?} must start with http:// or https://"));
        };
        if rest.contains(['?', '#', '@']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "URL {text:?} may not have a user, a query, a fragment or spaces; give scheme://host:port/path"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("URL {text:?}: unclosed '[' in the host"))?;
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("URL {text:?}: {h:?} is not an IPv6 address"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("URL {text:?} has no host"));
        }
        if !host.contains(':')
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(format!(
                "URL {text:?}: host {host:?} is not an IP address or a DNS name (no wildcards: a URL names one endpoint)"
            ));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("URL {text:?}: port {p:?} is not a number from 1 to 65535"))?,
            None if need_port => {
                return Err(format!(
                    "URL {text:?} needs an explicit port (grants name exact endpoints, e.g. https://127.0.0.1:10257/healthz)"
                ));
            }
            None if scheme == Scheme::Http => 80,
            None => 443,
        };
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path: path.to_string(),
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_one_exact_form() {
        let u = Url::parse("https://10.0.0.1:6443/livez", true).expect("url");
        assert_eq!(u.to_string(), "https://10.0.0.1:6443/livez");
        assert_eq!(
            Url::parse("HTTP://LocalHost/healthz", false)
                .expect("url")
                .to_string(),
            "http://localhost:80/healthz"
        );
        assert_eq!(
            Url::parse("https://[::1]:10257/healthz", true).expect("v6").host,
            "::1"
        );
        for bad in [
            "ftp://x:1/",
            "https://x/livez",
            "https://x:0/",
            "https://u@x:1/",
            "http://x:1/a?b",
            "http://:1/",
        ] {
            assert!(Url::parse(bad, true).is_err(), "{bad} must be refused");
        }
    }
}
