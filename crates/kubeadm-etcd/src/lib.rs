//! kubeadm's etcd membership for a control-plane node joining a cluster with stacked etcd, over the
//! `etcd` capability (WIT `0.1.5`): add this node's member as a learner (once: a join that is run
//! again finds its member already there), the `--initial-cluster` its etcd starts with, the
//! promotion once the learner caught up, and the cluster's health (`check-etcd`). Calls are retried
//! with kubeadm's interval within kubeadm's `timeouts.etcdAPICall` while etcd cannot answer yet;
//! a refusal by the host (a grant, an endpoint, a certificate) ends them at once.

use std::time::{Duration, Instant};
use wasmadm_plugin_sdk::ErrorText;
use wasmadm_plugin_sdk::etcd::{self, EtcdError, Member};
use wasmadm_plugin_sdk::types::PhaseError;

/// kubeadm's `EtcdAPICallRetryInterval`.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// etcd's refusals that pass: a learner not yet in sync, a member change while the members have
/// not been connected for long, another join's learner not promoted yet, an election.
const TRANSIENT: [&str; 6] = [
    "in sync with leader",
    "unhealthy cluster",
    "too many learner members",
    "request timed out",
    "leader changed",
    "no leader",
];

fn transient(message: &str) -> bool {
    TRANSIENT.iter().any(|t| message.contains(t))
}

/// Calls `call` on each endpoint in turn until one answers, again every [`RETRY_INTERVAL`] while
/// the errors are transient (etcd unreachable, slow, or refusing for now), until `timeout`.
/// Returns the last error when time runs out.
fn with_retry<T>(
    endpoints: &[String],
    timeout: Duration,
    mut call: impl FnMut(&str) -> Result<T, EtcdError>,
) -> Result<T, PhaseError> {
    if endpoints.is_empty() {
        return Err(PhaseError::Failed("etcd: no etcd endpoint to talk to".into()));
    }
    let deadline = Instant::now() + timeout;
    loop {
        let mut last = None;
        for endpoint in endpoints {
            match call(endpoint) {
                Ok(v) => return Ok(v),
                Err(e @ (EtcdError::Unavailable(_) | EtcdError::TimedOut(_))) => last = Some(e),
                Err(EtcdError::Rejected(m)) if transient(&m) => last = Some(EtcdError::Rejected(m)),
                Err(EtcdError::Denied(m)) => return Err(PhaseError::Denied(m)),
                Err(e) => return Err(PhaseError::Failed(e.text())),
            }
        }
        let last = last.map(|e| e.text()).unwrap_or_default();
        if Instant::now() + RETRY_INTERVAL >= deadline {
            return Err(PhaseError::Failed(format!(
                "etcd: still failing after {timeout:?}: {last}"
            )));
        }
        std::thread::sleep(RETRY_INTERVAL);
    }
}

/// Adds the member with `peer_url` (`https://<advertiseAddress>:2380`) as a learner, unless a member
/// with that peer URL already exists (a join run again), and returns its ID and the members.
/// `timeout` is kubeadm's `timeouts.etcdAPICall` (2m0s by default), as for [`promote`].
pub fn add_learner(
    endpoints: &[String],
    peer_url: &str,
    timeout: Duration,
) -> Result<(u64, Vec<Member>), PhaseError> {
    with_retry(endpoints, timeout, |endpoint| {
        let members = etcd::member_list(endpoint)?;
        if let Some(m) = members.iter().find(|m| m.peer_urls.iter().any(|u| u == peer_url)) {
            return Ok((m.id, members));
        }
        let (new, members) = etcd::member_add_learner(endpoint, &[peer_url.to_string()])?;
        Ok((new.id, members))
    })
}

/// etcd's `--initial-cluster` for the new member `id` starting as `name`: `name=peerURL` for every
/// member in etcd's order, a member that has no name yet (another join in progress) under its hex
/// ID, as kubeadm writes it.
pub fn initial_cluster(members: &[Member], id: u64, name: &str) -> String {
    members
        .iter()
        .filter_map(|m| {
            let peer = m.peer_urls.first()?;
            let member_name = if m.id == id {
                name.to_string()
            } else if m.name.is_empty() {
                format!("{:x}", m.id)
            } else {
                m.name.clone()
            };
            Some(format!("{member_name}={peer}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Promotes learner `id` once it caught up with the leader (etcd refuses until then), as kubeadm's
/// `MemberPromote`: a member that is already a voter is left as it is.
pub fn promote(endpoints: &[String], id: u64, timeout: Duration) -> Result<(), PhaseError> {
    with_retry(endpoints, timeout, |endpoint| {
        let members = etcd::member_list(endpoint)?;
        match members.iter().find(|m| m.id == id) {
            None => Err(EtcdError::Invalid(format!(
                "etcd at {endpoint} has no member {id:x} to promote"
            ))),
            Some(m) if !m.is_learner => Ok(()),
            Some(_) => etcd::member_promote(endpoint, id),
        }
    })
}

/// kubeadm's `etcdHealthyCheckRetries` and `etcdHealthyCheckInterval`: a joining member has
/// 8 × 5 s (the 40s kubeadm prints) to make the cluster available.
pub const HEALTHY_CHECK_RETRIES: u32 = 8;
pub const HEALTHY_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// kubeadm's `WaitForClusterAvailable`: every endpoint healthy, checked at once and then every
/// [`HEALTHY_CHECK_INTERVAL`], [`HEALTHY_CHECK_RETRIES`] times in all.
pub fn wait_cluster_available(endpoints: &[String]) -> Result<(), PhaseError> {
    let mut last = String::new();
    for attempt in 0..HEALTHY_CHECK_RETRIES {
        if attempt > 0 {
            std::thread::sleep(HEALTHY_CHECK_INTERVAL);
        }
        match check_cluster_health(endpoints) {
            Ok(()) => return Ok(()),
            Err(PhaseError::Denied(m)) => return Err(PhaseError::Denied(m)),
            Err(PhaseError::Failed(m) | PhaseError::InvalidConfig(m)) => last = m,
        }
    }
    Err(PhaseError::Failed(format!(
        "timeout waiting for etcd cluster to be available: {last}"
    )))
}

/// kubeadm's `CheckClusterHealth`: every endpoint answers healthy (`check-etcd`). No retry.
pub fn check_cluster_health(endpoints: &[String]) -> Result<(), PhaseError> {
    for endpoint in endpoints {
        etcd::health(endpoint).map_err(|e| match e {
            EtcdError::Denied(m) => PhaseError::Denied(m),
            other => PhaseError::Failed(format!("etcd cluster is not healthy: {}", other.text())),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, peer: &str, is_learner: bool) -> Member {
        Member {
            id,
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: Vec::new(),
            is_learner,
        }
    }

    #[test]
    fn the_initial_cluster_names_the_new_member_and_unnamed_ones_by_hex_id() {
        let members = [
            member(0xa1, "", "https://10.0.0.3:2380", true),
            member(0xb2, "cp-1", "https://10.0.0.1:2380", false),
            member(0xc3, "", "https://10.0.0.2:2380", true),
        ];
        assert_eq!(
            initial_cluster(&members, 0xa1, "cp-3"),
            "cp-3=https://10.0.0.3:2380,cp-1=https://10.0.0.1:2380,c3=https://10.0.0.2:2380"
        );
    }

    #[test]
    fn transient_refusals_are_retried_and_host_refusals_end_at_once() {
        let endpoints = vec!["https://10.0.0.1:2379".to_string()];
        let mut calls = 0;
        let promoted = with_retry(&endpoints, Duration::from_secs(30), |_| {
            calls += 1;
            if calls < 3 {
                Err(EtcdError::Rejected(
                    "etcdserver: can only promote a learner member which is in sync with leader".into(),
                ))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(promoted.ok(), Some(3));

        let mut calls = 0;
        let denied = with_retry(&endpoints, Duration::from_secs(30), |_| -> Result<(), _> {
            calls += 1;
            Err(EtcdError::Denied("no promote".into()))
        });
        assert!(matches!(denied, Err(PhaseError::Denied(m)) if m == "no promote"));
        let refused = with_retry(&endpoints, Duration::from_secs(30), |_| -> Result<(), _> {
            calls += 1;
            Err(EtcdError::Rejected("etcdserver: member not found".into()))
        });
        assert!(matches!(refused, Err(PhaseError::Failed(m)) if m.contains("member not found")));
        assert_eq!(calls, 2, "neither was retried");

        let gave_up = with_retry(&endpoints, Duration::from_millis(1), |e| -> Result<(), _> {
            Err(EtcdError::Unavailable(format!("{e}: connection refused")))
        });
        assert!(
            matches!(gave_up, Err(PhaseError::Failed(m)) if m.contains("10.0.0.1:2379: connection refused")),
        );
        assert!(with_retry(&[], Duration::from_secs(1), |_| Ok(())).is_err());
    }
}

/// The annotation kubeadm puts on the etcd Pod: the member's client URL.
pub const CLIENT_URLS_ANNOTATION: &str = "kubeadm.kubernetes.io/etcd.advertise-client-urls";

/// The etcd client URLs of a Pod list (`kubectl get pods -l component=etcd,tier=control-plane`):
/// kubeadm's `getEtcdEndpoints`, from each etcd mirror Pod's annotation.
pub fn endpoints_of_pods(pods: &serde_json::Value) -> Vec<String> {
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["metadata"]["annotations"][CLIENT_URLS_ANNOTATION].as_str())
        .flat_map(|urls| urls.split(','))
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect()
}

/// The cluster's etcd client URLs (kubeadm's `getEtcdEndpoints`): from the etcd mirror Pods in
/// kube-system, read with `client` (the run's, `admin.conf`).
pub fn cluster_endpoints(client: &wasmadm_plugin_sdk::kube::Client) -> Result<Vec<String>, PhaseError> {
    let pods = wasmadm_plugin_sdk::apply::resource("", "v1", "Pod", "pods", true);
    let list = client
        .list(
            &pods,
            Some("kube-system"),
            Some("component=etcd,tier=control-plane"),
        )
        .map_err(|e| match e.code {
            wasmadm_plugin_sdk::kube::ErrorCode::Denied => PhaseError::Denied(e.message),
            _ => PhaseError::Failed(format!(
                "could not retrieve the list of etcd endpoints: {}",
                e.message
            )),
        })?;
    let endpoints = endpoints_of_pods(&wasmadm_plugin_sdk::apply::parse(&list)?);
    if endpoints.is_empty() {
        return Err(PhaseError::Failed(format!(
            "could not retrieve the list of etcd endpoints: no etcd Pod carries the annotation \
             {CLIENT_URLS_ANNOTATION}"
        )));
    }
    Ok(endpoints)
}

/// `timeouts.etcdAPICall`, kubeadm's 2m0s when unset.
pub fn api_call_timeout(timeouts: &wasmadm_plugin_sdk::config::Timeouts) -> Result<Duration, PhaseError> {
    let text = timeouts.etcd_api_call.as_deref().unwrap_or("2m0s");
    let seconds = wasmadm_plugin_sdk::config::validate::parse_duration(text).ok_or_else(|| {
        PhaseError::InvalidConfig(format!(
            "timeouts.etcdAPICall: {text:?} is not a duration (e.g. 2m0s)"
        ))
    })?;
    Ok(Duration::from_secs_f64(seconds.max(0.0)))
}

#[cfg(test)]
mod pod_tests {
    use super::*;

    #[test]
    fn endpoints_come_from_the_etcd_pods_annotation() {
        let pods = serde_json::json!({"items": [
            {"metadata": {"annotations": {CLIENT_URLS_ANNOTATION: "https://10.0.0.1:2379"}}},
            {"metadata": {"annotations": {}}},
            {"metadata": {"annotations": {CLIENT_URLS_ANNOTATION: "https://10.0.0.2:2379,https://[fd00::2]:2379"}}},
        ]});
        assert_eq!(
            endpoints_of_pods(&pods),
            [
                "https://10.0.0.1:2379",
                "https://10.0.0.2:2379",
                "https://[fd00::2]:2379"
            ]
        );
    }
}
