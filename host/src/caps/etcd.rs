//! The `etcd` capability: etcd membership (list, add as learner, promote, remove) and health,
//! each call one HTTPS request to etcd's JSON gateway on the client URL the plugin names, with
//! the client certificate of the phase's `grants.etcd`.
//!
//! etcd 3.4 and later serve their gRPC API as JSON too (`POST /v3/cluster/member/list`, ...,
//! uint64 IDs as JSON strings), so the host needs no gRPC stack: the health capability's small
//! HTTP/1.1 client does. The verb is checked against the grant before the endpoint is even parsed;
//! the server must present a certificate of the granted CA for the host's name of the endpoint
//! before rustls presents the client certificate (TLS sends it only after verifying the server).

use super::health;
use super::plan::{Plan, PlanEntry};
use crate::bindings::wasmadm::plugin::etcd::{EtcdError, Member};
use crate::bindings::wasmadm::plugin::health::HealthError;
use crate::grants::EtcdAccess;
use crate::http;
use crate::values::{EtcdVerb, NodePath, Scheme, Url};
use cap_std::fs::Dir;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest one request may take (less when the phase's deadline is nearer). etcd itself gives
/// up on a proposal after about 7 s (5 s plus two election timeouts), so its own answer comes first.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The most peer URLs one member may be added with.
const MAX_PEER_URLS: usize = 16;
/// The most a granted certificate or key file may hold.
const MAX_PEM: u64 = 1 << 20;

/// The etcd capability of one phase.
pub struct EtcdCap {
    phase: String,
    grant: Option<EtcdAccess>,
    root: Arc<Dir>,
    dry_run: bool,
    plan: Plan,
}

impl EtcdCap {
    pub fn new(phase: &str, grant: Option<EtcdAccess>, root: Arc<Dir>, dry_run: bool, plan: Plan) -> Self {
        Self {
            phase: phase.to_string(),
            grant,
            root,
            dry_run,
            plan,
        }
    }

    /// `member-list`.
    pub fn member_list(&self, endpoint: &str) -> Result<Vec<Member>, EtcdError> {
        let (grant, url) = self.authorize(EtcdVerb::List, endpoint)?;
        self.list(grant, &url)
    }

    /// `member-add-learner`: the new member and every member after the change.
    pub fn member_add_learner(
        &self,
        endpoint: &str,
        peer_urls: Vec<String>,
    ) -> Result<(Member, Vec<Member>), EtcdError> {
        let (grant, url) = self.authorize(EtcdVerb::AddLearner, endpoint)?;
        if peer_urls.is_empty() || peer_urls.len() > MAX_PEER_URLS {
            return Err(EtcdError::Invalid(format!(
                "etcd: add a member with 1 to {MAX_PEER_URLS} peer URLs (got {})",
                peer_urls.len()
            )));
        }
        for peer in &peer_urls {
            Url::parse(peer, true).map_err(|e| EtcdError::Invalid(format!("etcd: peer URL: {e}")))?;
        }
        if self.dry_run {
            let mut members = self.list(grant, &url)?;
            self.plan.record(PlanEntry::Etcd {
                phase: self.phase.clone(),
                action: format!("add a learner member with peer URLs {}", peer_urls.join(",")),
                endpoint: base(&url),
            });
            let member = Member {
                id: 0,
                name: String::new(),
                peer_urls,
                client_urls: Vec::new(),
                is_learner: true,
            };
            members.push(member.clone());
            return Ok((member, members));
        }
        let answer = self.call(
            grant,
            &url,
            "/v3/cluster/member/add",
            &json!({"peerURLs": peer_urls, "isLearner": true}),
        )?;
        let member = member(&answer["member"]).map_err(|e| bad_answer(&url, &e))?;
        Ok((member, members(&answer).map_err(|e| bad_answer(&url, &e))?))
    }

    /// `member-promote`.
    pub fn member_promote(&self, endpoint: &str, id: u64) -> Result<(), EtcdError> {
        let (grant, url) = self.authorize(EtcdVerb::Promote, endpoint)?;
        self.change(
            grant,
            &url,
            "/v3/cluster/member/promote",
            id,
            "promote learner member",
        )
    }

    /// `member-remove`.
    pub fn member_remove(&self, endpoint: &str, id: u64) -> Result<(), EtcdError> {
        let (grant, url) = self.authorize(EtcdVerb::Remove, endpoint)?;
        self.change(grant, &url, "/v3/cluster/member/remove", id, "remove member")
    }

    /// `health`: etcd's `/health` says `{"health":"true"}` when the member has a leader and no
    /// alarm, else `"false"` (with a 503).
    pub fn health(&self, endpoint: &str) -> Result<(), EtcdError> {
        let (grant, url) = self.authorize(EtcdVerb::Health, endpoint)?;
        let (status, body) = self.send(grant, &url, "GET", "/health", None)?;
        let healthy = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("health").and_then(Value::as_str).map(|h| h == "true"));
        match (status, healthy) {
            (200, Some(true)) => Ok(()),
            (_, Some(_)) | (503, _) => Err(EtcdError::Unhealthy(format!(
                "etcd at {} is not healthy: {}",
                base(&url),
                body.trim()
            ))),
            _ => Err(bad_answer(
                &url,
                &format!("HTTP {status} to GET /health: {body:?}"),
            )),
        }
    }

    /// The grant when it allows `verb`, and the endpoint when it is `https://host:port`.
    fn authorize(&self, verb: EtcdVerb, endpoint: &str) -> Result<(&EtcdAccess, Url), EtcdError> {
        let grant = self
            .grant
            .as_ref()
            .filter(|g| g.verbs.contains(&verb))
            .ok_or_else(|| {
                EtcdError::Denied(format!(
                    "etcd: phase {:?} may not {verb} ({}); add `{verb}` to grants.etcd.verbs in the \
                     pipeline file if the phase should",
                    self.phase,
                    match &self.grant {
                        Some(g) => format!(
                            "its etcd grant allows {}",
                            g.verbs
                                .iter()
                                .map(|v| v.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        None => "it has no etcd grant".into(),
                    }
                ))
            })?;
        let url = Url::parse(endpoint, true).map_err(|e| EtcdError::Invalid(format!("etcd endpoint {e}")))?;
        if url.scheme != Scheme::Https || url.path != "/" {
            return Err(EtcdError::Invalid(format!(
                "etcd endpoint {endpoint:?} must be https://<host>:<port> (etcd's client URL, no \
                 path): the client certificate is only presented over TLS"
            )));
        }
        Ok((grant, url))
    }

    fn list(&self, grant: &EtcdAccess, url: &Url) -> Result<Vec<Member>, EtcdError> {
        let answer = self.call(grant, url, "/v3/cluster/member/list", &json!({}))?;
        members(&answer).map_err(|e| bad_answer(url, &e))
    }

    /// Promotes or removes member `id`, or records it under `--dry-run`.
    fn change(
        &self,
        grant: &EtcdAccess,
        url: &Url,
        path: &str,
        id: u64,
        what: &str,
    ) -> Result<(), EtcdError> {
        if self.dry_run {
            self.plan.record(PlanEntry::Etcd {
                phase: self.phase.clone(),
                action: format!("{what} {id:016x}"),
                endpoint: base(url),
            });
            return Ok(());
        }
        // The gateway takes uint64 fields as JSON strings.
        self.call(grant, url, path, &json!({"ID": id.to_string()}))
            .map(drop)
    }

    /// `POST`s `body` to a gateway `path`; etcd's refusals become `rejected` with its message.
    fn call(&self, grant: &EtcdAccess, url: &Url, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let (status, text) = self.send(grant, url, "POST", path, Some(body))?;
        let answer: Option<Value> = serde_json::from_str(&text).ok();
        match (status, answer) {
            (200, Some(v)) => Ok(v),
            (_, Some(v)) if v.get("message").or_else(|| v.get("error")).is_some() => {
                let message = v
                    .get("message")
                    .or_else(|| v.get("error"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Err(EtcdError::Rejected(format!(
                    "etcd at {} refused {path}: {message}",
                    base(url)
                )))
            }
            _ => Err(bad_answer(
                url,
                &format!("HTTP {status} to POST {path}: {text:?}"),
            )),
        }
    }

    /// One request with the grant's TLS client: the status and the body.
    fn send(
        &self,
        grant: &EtcdAccess,
        url: &Url,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), EtcdError> {
        let tls = self.tls_config(grant, url)?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: wasmadm\r\nAccept: application/json\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            http::host_header(url),
            body.len()
        );
        let timeout = crate::deadline::bound(REQUEST_TIMEOUT);
        let what = format!("{method} {url}{}", &path[1..]);
        let (raw, truncated) = http::send(url, Some(tls), request.as_bytes(), Instant::now() + timeout)
            .map_err(|e| from_http(health::classify(e, &what, timeout)))?;
        let response = http::parse_response(&raw, truncated)
            .map_err(|e| EtcdError::Unavailable(format!("{what}: {e}")))?;
        if response.truncated {
            return Err(EtcdError::Unavailable(format!(
                "{what}: the answer is longer than the host's cap of {} bytes",
                http::MAX_BODY
            )));
        }
        Ok((response.status, response.body))
    }

    /// The TLS client of the grant: etcd's server must chain to `ca`; `cert` and `key` are
    /// presented to it. Read per call, so a phase sees files written by an earlier one.
    fn tls_config(&self, grant: &EtcdAccess, url: &Url) -> Result<Arc<rustls::ClientConfig>, EtcdError> {
        let read = |file: &NodePath, what: &str| {
            health::read_node_file(&self.root, file, MAX_PEM)
                .map_err(|e| EtcdError::Tls(format!("etcd: cannot read the {what} file {file}: {e}")))
        };
        let roots = health::root_store(&read(&grant.ca, "CA")?, &grant.ca, url).map_err(EtcdError::Tls)?;
        let cert_pem = read(&grant.cert, "client certificate")?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                EtcdError::Tls(format!(
                    "etcd: the client certificate file {} holds no PEM certificate",
                    grant.cert
                ))
            })?;
        let key = PrivateKeyDer::from_pem_slice(&read(&grant.key, "client key")?).map_err(|e| {
            EtcdError::Tls(format!(
                "etcd: the client key file {} holds no usable PEM private key: {e}",
                grant.key
            ))
        })?;
        let config = http::client_builder()
            .map_err(|e| EtcdError::Tls(format!("etcd: {e}")))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| {
                EtcdError::Tls(format!(
                    "etcd: the client certificate {} and key {} do not make a TLS client: {e}",
                    grant.cert, grant.key
                ))
            })?;
        Ok(Arc::new(config))
    }
}

/// The health capability's transport errors in this interface's terms.
fn from_http(e: HealthError) -> EtcdError {
    match e {
        HealthError::TimedOut(m) => EtcdError::TimedOut(m),
        HealthError::Tls(m) => EtcdError::Tls(m),
        HealthError::Denied(m)
        | HealthError::Refused(m)
        | HealthError::Unreachable(m)
        | HealthError::Other(m) => EtcdError::Unavailable(m),
    }
}

/// An endpoint as the plugin gave it: `https://host:port`.
fn base(url: &Url) -> String {
    url.to_string().trim_end_matches('/').to_string()
}

fn bad_answer(url: &Url, what: &str) -> EtcdError {
    EtcdError::Unavailable(format!("etcd at {} gave an unexpected answer: {what}", base(url)))
}

/// The `members` of a gateway answer.
fn members(answer: &Value) -> Result<Vec<Member>, String> {
    answer
        .get("members")
        .and_then(Value::as_array)
        .ok_or_else(|| "no `members` list".to_string())?
        .iter()
        .map(member)
        .collect()
}

/// One member of a gateway answer (absent fields are etcd's zero values, which JSON omits).
fn member(v: &Value) -> Result<Member, String> {
    let id = match v.get("ID") {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| format!("a member without a numeric `ID`: {v}"))?;
    let strings = |key: &str| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default()
    };
    Ok(Member {
        id,
        name: v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        peer_urls: strings("peerURLs"),
        client_urls: strings("clientURLs"),
        is_learner: v.get("isLearner").and_then(Value::as_bool).unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_members_parse_with_string_ids_and_omitted_fields() {
        let answer: Value = serde_json::from_str(
            r#"{"header":{},"members":[{"ID":"11350428248581003679","peerURLs":["https://127.0.0.1:2380"],"isLearner":true},
                {"ID":"13668033151171901709","name":"a","peerURLs":["https://127.0.0.1:2381"],"clientURLs":["https://127.0.0.1:2379"]}]}"#,
        )
        .expect("json");
        let list = members(&answer).expect("members");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, 11350428248581003679);
        assert!(list[0].is_learner && list[0].name.is_empty() && list[0].client_urls.is_empty());
        assert_eq!(
            (
                list[1].name.as_str(),
                list[1].is_learner,
                list[1].client_urls.len()
            ),
            ("a", false, 1)
        );
        assert!(member(&json!({"ID": "x"})).is_err());
        assert!(members(&json!({"error": "no"})).is_err());
    }
}
