//! A token with its settings, and the `kube-system/bootstrap-token-<id>` Secret that stores it
//! (spec §5.2; kubeadm's `BootstrapTokenToSecret` / `BootstrapTokenFromSecret`).

use crate::{Error, Token, clock};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// The namespace of token Secrets.
pub const SECRET_NAMESPACE: &str = "kube-system";
/// Token Secrets are named `bootstrap-token-<id>`.
pub const SECRET_PREFIX: &str = "bootstrap-token-";
/// The Secret type the API server's bootstrap authenticator looks for.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The usages a token may have.
pub const USAGES: [&str; 2] = ["signing", "authentication"];

const USAGE_PREFIX: &str = "usage-bootstrap-";
const GROUP_PREFIX: &str = "system:bootstrappers:";

/// A bootstrap token as `init` configures it and `token list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub token: Token,
    /// Empty when none.
    pub description: String,
    /// Unix seconds; `None` for a token that never expires.
    pub expires: Option<i64>,
    pub usages: Vec<String>,
    pub groups: Vec<String>,
}

fn check_usages(usages: &[String]) -> Result<(), Error> {
    match usages.iter().find(|u| !USAGES.contains(&u.as_str())) {
        Some(u) => Err(Error::InvalidUsage(u.clone())),
        None => Ok(()),
    }
}

/// `\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z`.
fn check_groups(groups: &[String]) -> Result<(), Error> {
    let valid = |g: &str| {
        g.strip_prefix(GROUP_PREFIX).is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 256
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
                && rest
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    };
    match groups.iter().find(|g| !valid(g)) {
        Some(g) => Err(Error::InvalidGroup(g.clone())),
        None => Ok(()),
    }
}

impl TokenSpec {
    /// A token as configured: `ttl` (a Go duration, `0` for no expiry) counts from `now`;
    /// `expires` (RFC 3339) wins over `ttl`, as in kubeadm. Usages and groups are checked.
    pub fn new(
        token: Token,
        description: &str,
        ttl: Option<&str>,
        expires: Option<&str>,
        usages: &[String],
        groups: &[String],
        now: i64,
    ) -> Result<Self, Error> {
        check_usages(usages)?;
        check_groups(groups)?;
        let expires = match (expires, ttl) {
            (Some(e), _) => Some(clock::parse_rfc3339(e).ok_or_else(|| Error::InvalidTime {
                field: "expires".into(),
                value: e.into(),
            })?),
            (None, Some(t)) => {
                let seconds = clock::parse_duration(t).ok_or_else(|| Error::InvalidDuration {
                    field: "ttl".into(),
                    value: t.into(),
                })?;
                (seconds > 0).then(|| now.saturating_add(seconds))
            }
            (None, None) => None,
        };
        Ok(Self {
            token,
            description: description.to_string(),
            expires,
            usages: usages.to_vec(),
            groups: groups.to_vec(),
        })
    }

    /// A token from the kubeadm configuration (`bootstrapTokens[]`), generating the token when
    /// the entry has none, as `kubeadm init` does.
    pub fn from_config(c: &kubeadm_config::BootstrapToken, now: i64) -> Result<Self, Error> {
        let token = if c.token.is_empty() {
            Token::generate()?
        } else {
            Token::parse(&c.token)?
        };
        Self::new(
            token,
            c.description.as_deref().unwrap_or_default(),
            c.ttl.as_deref(),
            c.expires.as_deref(),
            &c.usages,
            &c.groups,
            now,
        )
    }

    /// `bootstrap-token-<id>`.
    pub fn secret_name(&self) -> String {
        format!("{SECRET_PREFIX}{}", self.token.id)
    }

    /// The Secret kubeadm writes for this token (values base64 in `data`, as kubeadm sends them).
    pub fn to_secret(&self) -> Value {
        let mut data = Map::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_string(), Value::String(STANDARD.encode(v)));
        };
        put("token-id", &self.token.id);
        put("token-secret", &self.token.secret);
        if !self.description.is_empty() {
            put("description", &self.description);
        }
        if let Some(t) = self.expires {
            put("expiration", &clock::format_rfc3339(t));
        }
        for usage in &self.usages {
            put(&format!("{USAGE_PREFIX}{usage}"), "true");
        }
        if !self.groups.is_empty() {
            put("auth-extra-groups", &self.groups.join(","));
        }
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.secret_name(), "namespace": SECRET_NAMESPACE},
            "type": SECRET_TYPE,
            "data": data,
        })
    }

    /// Reads a token Secret back (`token list`). `data` is base64; `stringData` is accepted too
    /// for Secrets written by hand. Usages come back sorted, as kubeadm lists them.
    pub fn from_secret(secret: &Value) -> Result<Self, Error> {
        let name = secret["metadata"]["name"].as_str().unwrap_or_default();
        let invalid = |message: String| Error::InvalidSecret {
            name: name.to_string(),
            message,
        };
        if secret["type"].as_str() != Some(SECRET_TYPE) {
            return Err(invalid(format!("its type is not {SECRET_TYPE:?}")));
        }
        let field = |key: &str| -> Result<Option<String>, Error> {
            if let Some(v) = secret["data"][key].as_str() {
                let bytes = STANDARD
                    .decode(v)
                    .map_err(|e| invalid(format!("data.{key} is not base64: {e}")))?;
                return String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| invalid(format!("data.{key} is not UTF-8")));
            }
            Ok(secret["stringData"][key].as_str().map(str::to_string))
        };
        let id = field("token-id")?.unwrap_or_default();
        let token = Token::parse(&format!("{id}.{}", field("token-secret")?.unwrap_or_default()))
            .map_err(|_| invalid("token-id or token-secret is missing or malformed".into()))?;
        if name != format!("{SECRET_PREFIX}{id}") {
            return Err(invalid(format!("its name does not match token-id {id:?}")));
        }
        let expires = match field("expiration")? {
            Some(e) => Some(
                clock::parse_rfc3339(&e)
                    .ok_or_else(|| invalid(format!("expiration {e:?} is not an RFC 3339 time")))?,
            ),
            None => None,
        };
        let mut keys: Vec<&str> = ["data", "stringData"]
            .iter()
            .filter_map(|k| secret[*k].as_object())
            .flat_map(|m| m.keys().map(String::as_str))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut usages = Vec::new();
        for key in keys {
            if let Some(usage) = key.strip_prefix(USAGE_PREFIX)
                && field(key)?.as_deref() == Some("true")
            {
                usages.push(usage.to_string());
            }
        }
        let groups = field("auth-extra-groups")?
            .map(|g| {
                g.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            token,
            description: field("description")?.unwrap_or_default(),
            expires,
            usages,
            groups,
        })
    }

    /// True when the token has an expiry at or before `now`.
    pub fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ttl: Option<&str>) -> Result<TokenSpec, Error> {
        TokenSpec::new(
            Token::parse("abcdef.0123456789abcdef")?,
            "",
            ttl,
            None,
            &["signing".into(), "authentication".into()],
            &[crate::DEFAULT_GROUP.into()],
            1_795_637_840, // 24h before the reference expiration
        )
    }

    #[test]
    fn secret_matches_kubeadms_reference_data() {
        let secret = spec(Some("24h0m0s")).expect("valid").to_secret();
        // kube-system.secret.bootstrap-token-abcdef.yaml, data as kubeadm wrote it.
        let expected = [
            (
                "auth-extra-groups",
                "c3lzdGVtOmJvb3RzdHJhcHBlcnM6a3ViZWFkbTpkZWZhdWx0LW5vZGUtdG9rZW4=",
            ),
            ("expiration", "MjAyNi0xMS0yNlQyMDoxNzoyMFo="),
            ("token-id", "YWJjZGVm"),
            ("token-secret", "MDEyMzQ1Njc4OWFiY2RlZg=="),
            ("usage-bootstrap-authentication", "dHJ1ZQ=="),
            ("usage-bootstrap-signing", "dHJ1ZQ=="),
        ];
        let data = secret["data"].as_object().expect("data");
        assert_eq!(data.len(), expected.len(), "{data:?}");
        for (k, v) in expected {
            assert_eq!(data[k], v, "{k}");
        }
        assert_eq!(secret["type"], SECRET_TYPE);
        assert_eq!(secret["metadata"]["name"], "bootstrap-token-abcdef");
        assert_eq!(secret["metadata"]["namespace"], "kube-system");
    }

    #[test]
    fn secret_round_trips_with_sorted_usages() {
        let mut s = spec(Some("1h")).expect("valid");
        s.description = "for CI".into();
        let back = TokenSpec::from_secret(&s.to_secret()).expect("parses");
        assert_eq!(back.usages, ["authentication", "signing"]);
        s.usages.sort();
        assert_eq!(back, s);
    }

    #[test]
    fn zero_ttl_never_expires() {
        let s = spec(Some("0")).expect("valid");
        assert_eq!(s.expires, None);
        assert!(s.to_secret()["data"].get("expiration").is_none());
        assert!(!s.expired(i64::MAX));
    }

    #[test]
    fn bad_settings_name_the_value() {
        let t = Token::parse("abcdef.0123456789abcdef").expect("valid");
        let err = TokenSpec::new(t.clone(), "", None, None, &["sign".into()], &[], 0).expect_err("usage");
        assert_eq!(err, Error::InvalidUsage("sign".into()));
        for g in [
            "system:bootstrappers:",
            "system:nodes",
            "system:bootstrappers:Team",
            "system:bootstrappers:x-",
        ] {
            let err = TokenSpec::new(t.clone(), "", None, None, &[], &[g.into()], 0).expect_err(g);
            assert_eq!(err, Error::InvalidGroup(g.into()));
        }
        let err = TokenSpec::new(t, "", Some("1d"), None, &[], &[], 0).expect_err("ttl");
        assert!(err.to_string().contains("\"1d\""), "{err}");
    }

    #[test]
    fn rejects_secrets_that_are_not_tokens() {
        let mut secret = spec(None).expect("valid").to_secret();
        secret["metadata"]["name"] = "bootstrap-token-zzzzzz".into();
        let err = TokenSpec::from_secret(&secret)
            .expect_err("name mismatch")
            .to_string();
        assert!(
            err.contains("bootstrap-token-zzzzzz") && err.contains("abcdef"),
            "{err}"
        );
        secret["type"] = "Opaque".into();
        assert!(TokenSpec::from_secret(&secret).is_err());
    }
}
