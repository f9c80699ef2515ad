//! The `etcd` capability against real etcd 3.4 (Debian's `etcd-server`) started from the manifest
//! wasmadm generates: membership changes as a control-plane join makes them (add a learner, start
//! it, promote it once it caught up), health, removal, and the refusals: a verb off the grant, a
//! server of another CA, an endpoint that is not `https://host:port`. Most calls go through the
//! capability's Rust API (the test starts the new member between two calls); the sandbox probe
//! drives the same capability through the WIT interface, with the grant from a pipeline file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmadm::bindings::wasmadm::plugin::etcd::{EtcdError, Member};
use wasmadm::caps::etcd::EtcdCap;
use wasmadm::caps::plan::{Plan, PlanEntry};
use wasmadm::config::pipeline::{EtcdGrant, GrantPath, Pipeline};
use wasmadm::grants::EtcdAccess;
use wasmadm::values::{EtcdVerb, NodePath};
use wasmadm_tests::etcd::{Etcd, etcdctl, foreign_client, free_peer_url, healthcheck_client, start, text};
use wasmadm_tests::{PROBE_WASM, Run, sha256_file};

const CA: &str = "/etc/kubernetes/pki/etcd/ca.crt";
const CERT: &str = "/etc/kubernetes/pki/apiserver-etcd-client.crt";
const KEY: &str = "/etc/kubernetes/pki/apiserver-etcd-client.key";

fn path(p: &str) -> NodePath {
    NodePath::parse(p).expect("node path")
}

/// kubeadm's files with `verbs`, and `ca` as the CA file.
fn grant_with_ca(ca: &str, verbs: &[EtcdVerb]) -> EtcdAccess {
    EtcdAccess {
        ca: path(ca),
        cert: path(CERT),
        key: path(KEY),
        verbs: verbs.to_vec(),
    }
}

const ALL: [EtcdVerb; 5] = [
    EtcdVerb::List,
    EtcdVerb::AddLearner,
    EtcdVerb::Promote,
    EtcdVerb::Remove,
    EtcdVerb::Health,
];

/// The capability of a phase `etcd-join` on `etcd`'s node root.
fn cap(etcd: &Etcd, grant: Option<EtcdAccess>, dry_run: bool, plan: Plan) -> EtcdCap {
    let root = cap_std::fs::Dir::open_ambient_dir(&etcd.root, cap_std::ambient_authority()).expect("root");
    EtcdCap::new("etcd-join", grant, Arc::new(root), dry_run, plan)
}

fn full(etcd: &Etcd) -> EtcdCap {
    cap(etcd, Some(grant_with_ca(CA, &ALL)), false, Plan::default())
}

/// `(name, is-learner)` of each member, sorted by name.
fn names(members: &[Member]) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = members.iter().map(|m| (m.name.clone(), m.is_learner)).collect();
    v.sort();
    v
}

#[test]
fn a_learner_is_added_started_promoted_and_removed_through_the_capability() {
    let mut first = start();
    let etcd = full(&first);
    let endpoint = first.client_url.clone();

    let members = etcd.member_list(&endpoint).expect("list");
    assert_eq!(names(&members), [(first.name.clone(), false)]);
    assert_eq!(members[0].peer_urls, [first.peer_url.clone()]);
    assert_eq!(members[0].client_urls, std::slice::from_ref(&endpoint));
    etcd.health(&endpoint).expect("healthy");

    // Added as a learner: no name until it starts, and the list includes it.
    let peer = free_peer_url();
    let (learner, members) = etcd
        .member_add_learner(&endpoint, vec![peer.clone()])
        .expect("add learner");
    assert!(
        learner.is_learner && learner.name.is_empty() && learner.id != 0,
        "{learner:?}"
    );
    assert_eq!(learner.peer_urls, std::slice::from_ref(&peer));
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(
        members
            .iter()
            .any(|m| m.id == learner.id && m.is_learner && m.peer_urls == learner.peer_urls),
        "{members:?}"
    );

    // The new member starts with the cluster as the answer lists it, as etcd-join writes it.
    let initial_cluster: Vec<String> = members
        .iter()
        .map(|m| {
            let name = if m.id == learner.id {
                "second"
            } else {
                m.name.as_str()
            };
            format!("{name}={}", m.peer_urls.join(","))
        })
        .collect();
    let mut second = first.start_member("second", &peer, &initial_cluster.join(","));

    // Promotion is refused until the learner caught up; then it succeeds.
    retry(&mut second, "in sync with leader", || {
        etcd.member_promote(&endpoint, learner.id)
    });

    let members = etcd.member_list(&endpoint).expect("list");
    assert_eq!(
        names(&members),
        [(first.name.clone(), false), ("second".to_string(), false)]
    );
    assert!(members.iter().all(|m| !m.client_urls.is_empty()), "{members:?}");
    // etcdctl, not wasmadm, sees the same: two started voting members.
    let listed = etcdctl(
        &endpoint,
        &first.ca(),
        &healthcheck_client(&first.pki),
        &["member", "list"],
    );
    let listed = text(&listed);
    assert_eq!(listed.matches(", started, ").count(), 2, "{listed}");
    assert!(
        listed.contains(&format!("{:x}, started, second, {peer}", learner.id)),
        "{listed}"
    );
    assert!(!listed.contains("true"), "no learner is left: {listed}");
    // Both members answer health, each at its own endpoint.
    etcd.health(&endpoint).expect("first healthy");
    etcd.health(&second.client_url).expect("second healthy");

    // Removed through the second member's own endpoint: the first one no longer lists it. etcd
    // refuses to remove a member until the others have been connected for a while (5 s).
    let second_url = second.client_url.clone();
    retry(&mut second, "unhealthy cluster", || {
        etcd.member_remove(&second_url, learner.id)
    });
    let members = etcd.member_list(&endpoint).expect("list");
    assert_eq!(names(&members), [(first.name.clone(), false)]);
    // Removing it again is etcd's own refusal, with etcd's words.
    match etcd.member_remove(&endpoint, learner.id) {
        Err(EtcdError::Rejected(m)) => assert!(m.contains("etcdserver: member not found"), "{m}"),
        other => panic!("removing twice: {other:?}"),
    }
    first.process.assert_running();
}

/// Calls `call` until etcd stops refusing it with a message containing `transient`; fails on any
/// other error, when `member` exits, or after a minute.
fn retry(member: &mut Etcd, transient: &str, call: impl Fn() -> Result<(), EtcdError>) {
    let started = Instant::now();
    let mut refusals = Vec::new();
    loop {
        match call() {
            Ok(()) => return,
            Err(EtcdError::Rejected(m)) if m.contains(transient) => refusals.push(m),
            Err(e) => panic!("{e:?} after {refusals:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "etcd kept refusing: {refusals:?}\n{}",
            member.process.log_tail(30)
        );
        member.process.assert_running();
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_verb_off_the_grant_is_denied_before_anything_is_sent() {
    let first = start();
    let list_only = cap(
        &first,
        Some(grant_with_ca(CA, &[EtcdVerb::List])),
        false,
        Plan::default(),
    );
    let endpoint = first.client_url.clone();
    match list_only.member_add_learner(&endpoint, vec![free_peer_url()]) {
        Err(EtcdError::Denied(m)) => {
            assert!(
                m.contains("phase \"etcd-join\" may not add-learner")
                    && m.contains("its etcd grant allows list"),
                "{m}"
            );
            assert!(m.contains("grants.etcd.verbs"), "names the fix: {m}");
        }
        other => panic!("add-learner without the verb: {other:?}"),
    }
    assert_eq!(
        list_only.member_list(&endpoint).expect("list").len(),
        1,
        "nothing was added"
    );

    // Denied before connecting: an endpoint where nothing listens is not even tried.
    let nowhere = free_peer_url();
    for (what, result) in [
        ("promote", list_only.member_promote(&nowhere, 1)),
        ("remove", list_only.member_remove(&nowhere, 1)),
        ("health", list_only.health(&nowhere)),
    ] {
        assert!(
            matches!(result, Err(EtcdError::Denied(ref m)) if m.contains(what)),
            "{what}: {result:?}"
        );
    }
    let none = cap(&first, None, false, Plan::default());
    match none.member_list(&endpoint) {
        Err(EtcdError::Denied(m)) => assert!(m.contains("it has no etcd grant"), "{m}"),
        other => panic!("list without a grant: {other:?}"),
    }
    // With the verb, the same unreachable endpoint is tried and reported as unavailable.
    let all = full(&first);
    assert!(matches!(all.health(&nowhere), Err(EtcdError::Unavailable(_))));
}

#[test]
fn a_server_of_another_ca_is_refused_and_never_sees_the_client_certificate() {
    let mut first = start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (other_ca, _) = foreign_client(dir.path(), "someone");
    std::fs::copy(&other_ca, first.pki.join("etcd/other-ca.crt")).expect("copy CA");
    let wrong = cap(
        &first,
        Some(grant_with_ca("/etc/kubernetes/pki/etcd/other-ca.crt", &ALL)),
        false,
        Plan::default(),
    );
    let before = first.process.log_text().len();
    let url = first.client_url.clone();
    match wrong.member_list(&url) {
        Err(EtcdError::Tls(m)) => assert!(m.contains("TLS") && m.contains(&url), "{m}"),
        other => panic!("a server of another CA: {other:?}"),
    }
    // etcd saw the client abort the handshake (`remote error`, rustls's `unknown CA` alert): the
    // client refused the server's certificate before it would have presented its own (etcd logs
    // `x509: certificate signed by unknown authority` when it refuses a client's certificate).
    let log_file = first.process.log.clone();
    first.process.wait_until(Duration::from_secs(10), || {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        log.get(before..)
            .is_some_and(|new| new.contains("remote error: tls: unknown certificate authority"))
    });
    let log = first.process.log_text();
    assert!(!log[before..].contains("signed by unknown authority"), "{log}");
    // A grant file that is not a certificate is a TLS error naming the file, before connecting.
    let bad = cap(
        &first,
        Some(EtcdAccess {
            cert: path(KEY),
            ..grant_with_ca(CA, &ALL)
        }),
        false,
        Plan::default(),
    );
    match bad.health(&url) {
        Err(EtcdError::Tls(m)) => assert!(m.contains(KEY) && m.contains("no PEM certificate"), "{m}"),
        other => panic!("a key as certificate: {other:?}"),
    }
}

#[test]
fn only_https_endpoints_without_a_path_are_accepted() {
    let first = start();
    let etcd = full(&first);
    let http = first.client_url.replace("https://", "http://");
    for endpoint in [
        http.as_str(),
        &format!("{}/v3/kv/range", first.client_url),
        "127.0.0.1:2379",
        "https://127.0.0.1",
    ] {
        match etcd.member_list(endpoint) {
            Err(EtcdError::Invalid(m)) => assert!(m.contains("etcd endpoint"), "{endpoint}: {m}"),
            other => panic!("{endpoint}: {other:?}"),
        }
    }
    match etcd.member_add_learner(&first.client_url, vec!["not a url".into()]) {
        Err(EtcdError::Invalid(m)) => assert!(m.contains("peer URL"), "{m}"),
        other => panic!("a bad peer URL: {other:?}"),
    }
    assert_eq!(etcd.member_list(&first.client_url).expect("list").len(), 1);
}

#[test]
fn dry_run_records_membership_changes_and_reads_for_real() {
    let first = start();
    let plan = Plan::default();
    let etcd = cap(&first, Some(grant_with_ca(CA, &ALL)), true, plan.clone());
    let endpoint = first.client_url.clone();
    let peer = free_peer_url();
    let (learner, members) = etcd
        .member_add_learner(&endpoint, vec![peer.clone()])
        .expect("dry-run add");
    assert_eq!((learner.id, learner.is_learner), (0, true));
    assert_eq!(
        names(&members),
        [(String::new(), true), (first.name.clone(), false)]
    );
    etcd.member_promote(&endpoint, 0xabc).expect("dry-run promote");
    etcd.member_remove(&endpoint, 0xabc).expect("dry-run remove");
    etcd.health(&endpoint).expect("health runs");
    let lines: Vec<String> = plan.entries().iter().map(PlanEntry::to_string).collect();
    let at = format!("(etcd at {endpoint})");
    assert_eq!(
        lines,
        [
            format!("[dryrun] Would add a learner member with peer URLs {peer} {at}"),
            format!("[dryrun] Would promote learner member 0000000000000abc {at}"),
            format!("[dryrun] Would remove member 0000000000000abc {at}"),
        ]
    );
    assert_eq!(
        full(&first).member_list(&endpoint).expect("list").len(),
        1,
        "nothing was added"
    );
}

/// A one-phase pipeline running the probe's `etcd` action with `settings` and an etcd grant of
/// `verbs` (YAML flow).
fn probe(settings: &str, verbs: &str) -> Pipeline {
    let yaml = format!(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: etcd-join\n    component: {PROBE_WASM}\n    \
         digest: sha256:{}\n    settings: {{action: etcd, {settings}}}\n    grants:\n      etcd: {{ca: {CA}, cert: {CERT}, \
         key: {KEY}, verbs: {verbs}}}\n",
        sha256_file(PROBE_WASM)
    );
    Pipeline::parse(&yaml, Path::new("etcd-pipeline.yaml")).expect("pipeline")
}

fn run_probe(pipeline: &Pipeline, etcd: &Etcd, dry_run: bool) -> wasmadm_tests::Outcome {
    let mut run = Run::new(pipeline, &etcd.root);
    run.no_cluster = true;
    run.dry_run = dry_run;
    run.go()
}

#[test]
fn a_plugin_reaches_etcd_through_the_wit_interface_with_the_pipelines_grant() {
    let first = start();
    let endpoint = &first.client_url;
    let out = run_probe(
        &probe(&format!("op: list, endpoint: \"{endpoint}\""), "[list]"),
        &first,
        false,
    );
    out.expect_ok();
    let members = out.output("etcd-join.members").expect("members");
    assert!(members.ends_with(&format!(" {} false", first.name)), "{members}");

    let peer = free_peer_url();
    let add = format!("op: add-learner, endpoint: \"{endpoint}\", peerUrls: [\"{peer}\"]");
    let err = run_probe(&probe(&add, "[list]"), &first, false).error();
    assert!(err.contains("may not add-learner"), "{err}");

    // Under --dry-run the plugin gets the would-be member, and the plan says what was not done.
    let out = run_probe(&probe(&add, "[add-learner]"), &first, true);
    out.expect_ok();
    assert_eq!(out.output("etcd-join.added").as_deref(), Some("0  true"));
    let plan: Vec<String> = out
        .result
        .as_ref()
        .map(|r| r.plan.entries().iter().map(PlanEntry::to_string).collect())
        .unwrap_or_default();
    assert_eq!(
        plan,
        [format!(
            "[dryrun] Would add a learner member with peer URLs {peer} (etcd at {endpoint})"
        )]
    );
    assert_eq!(full(&first).member_list(endpoint).expect("list").len(), 1);
}

fn pipeline_error(grant: &str) -> String {
    let yaml = format!(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\njoin:\n  - name: etcd-join\n    component: builtin:preflight\n    \
         grants:\n      etcd: {grant}\n"
    );
    Pipeline::parse(&yaml, Path::new("my-pipeline.yaml"))
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn the_etcd_grant_is_validated_with_file_and_line() {
    let files = format!("ca: {CA}, cert: {CERT}, key: {KEY}");
    let err = pipeline_error(&format!("{{{files}, verbs: [list, join]}}"));
    assert!(err.starts_with("my-pipeline.yaml:7:"), "{err}");
    assert!(
        err.contains("unknown variant `join`") && err.contains("add-learner"),
        "{err}"
    );
    let err = pipeline_error(&format!("{{{files}, verbs: []}}"));
    assert!(
        err.starts_with("my-pipeline.yaml:4: join phase \"etcd-join\": the etcd grant lists no verbs"),
        "{err}"
    );
    let err = pipeline_error("{ca: etc/ca.crt, cert: /c, key: /k, verbs: [list]}");
    assert!(err.contains("\"etc/ca.crt\" is not an absolute path"), "{err}");
    let err = pipeline_error("{ca: /ca, cert: /c, verbs: [list]}");
    assert!(err.contains("missing field `key`"), "{err}");
    let err = pipeline_error(&format!("{{{files}, verbs: [list], endpoints: [x]}}"));
    assert!(err.contains("unknown field `endpoints`"), "{err}");

    // A valid grant round-trips, and is not something `describe()` could ask for.
    let yaml = format!(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\njoin:\n  - name: etcd-join\n    component: builtin:preflight\n    \
         grants:\n      etcd: {{{files}, verbs: [list, add-learner, promote, remove, health]}}\n"
    );
    let pipeline = Pipeline::parse(&yaml, Path::new("ok.yaml")).expect("valid");
    let grants = &pipeline.join.0[0].grants;
    let file = |p: &str| GrantPath::try_from(p.to_string()).expect("grant path");
    let expected = EtcdGrant {
        ca: file(CA),
        cert: file(CERT),
        key: file(KEY),
        verbs: ALL.to_vec(),
    };
    assert_eq!(grants.etcd.as_deref(), Some(&expected));
    assert_eq!(grants.requestable().etcd, None);
    let again = serde_yaml::to_string(&pipeline).expect("yaml");
    let back = Pipeline::parse(&again, Path::new("again.yaml")).expect("round trip");
    assert_eq!(back.join.0[0].grants, *grants);
}

#[test]
fn a_call_ends_at_the_phases_deadline() {
    let root = wasmadm_tests::etcd::generated_node();
    let dir = cap_std::fs::Dir::open_ambient_dir(root.path(), cap_std::ambient_authority()).expect("root");
    let etcd = EtcdCap::new(
        "etcd-join",
        Some(grant_with_ca(CA, &ALL)),
        Arc::new(dir),
        false,
        Plan::default(),
    );
    // Accepted by the kernel, never answered: only a deadline ends the TLS handshake.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let endpoint = format!("https://{}", silent.local_addr().expect("address"));
    let started = Instant::now();
    let result = wasmadm::deadline::scope(started + Duration::from_millis(300), || etcd.health(&endpoint));
    assert!(
        matches!(result, Err(EtcdError::TimedOut(ref m)) if m.contains(&endpoint)),
        "{result:?}"
    );
    assert!(
        started.elapsed() < wasmadm::caps::etcd::REQUEST_TIMEOUT,
        "cut by the phase's deadline, not the per-request limit: {:?}",
        started.elapsed()
    );
}

#[test]
fn kubeadms_join_steps_add_a_learner_start_it_and_promote_it_and_a_second_run_changes_nothing() {
    let first = start();
    let peer = free_peer_url();
    let yaml = format!(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: etcd-join\n    component: {PROBE_WASM}\n    \
         digest: sha256:{}\n    settings: {{action: etcd-join, endpoint: \"{}\", peerUrl: \"{peer}\", name: second, \
         path: /etc/kubernetes/etcd-join/initial-cluster}}\n    grants:\n      files: {{write: [/etc/kubernetes/etcd-join]}}\n      \
         etcd: {{ca: {CA}, cert: {CERT}, key: {KEY}, verbs: [list, add-learner, promote]}}\n",
        sha256_file(PROBE_WASM),
        first.client_url
    );
    let pipeline = Pipeline::parse(&yaml, Path::new("etcd-join.yaml")).expect("pipeline");
    std::fs::create_dir_all(first.root.join("etc/kubernetes/etcd-join")).expect("mkdir");
    let written = first.root.join("etc/kubernetes/etcd-join/initial-cluster");

    let (out, mut second) = std::thread::scope(|s| {
        let join = s.spawn(|| run_probe(&pipeline, &first, false));
        // The harness plays the kubelet: it starts the member once the plugin wrote its cluster.
        let started = Instant::now();
        let cluster = loop {
            if let Ok(text) = std::fs::read_to_string(&written) {
                break text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60) && !join.is_finished(),
                "the plugin wrote no initial cluster"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut entries: Vec<&str> = cluster.split(',').collect();
        entries.sort();
        assert_eq!(
            entries,
            [
                format!("{}={}", first.name, first.peer_url),
                format!("second={peer}")
            ]
        );
        let second = first.start_member("second", &peer, &cluster);
        (join.join().expect("plugin thread"), second)
    });
    out.expect_ok();
    let id: u64 = out
        .output("etcd-join.id")
        .and_then(|v| v.parse().ok())
        .expect("id");
    let members = full(&first).member_list(&first.client_url).expect("list");
    assert_eq!(
        names(&members),
        [(first.name.clone(), false), ("second".to_string(), false)]
    );
    assert!(
        members
            .iter()
            .any(|m| m.id == id && m.peer_urls == [peer.clone()])
    );
    second.process.assert_running();

    // A join run again finds its member, adds nothing and has nothing to promote.
    std::fs::remove_file(&written).expect("rm");
    let again = run_probe(&pipeline, &first, false);
    again.expect_ok();
    assert_eq!(again.output("etcd-join.id"), Some(id.to_string()));
    assert_eq!(
        full(&first).member_list(&first.client_url).expect("list").len(),
        2
    );

    // With its one peer gone, the first member loses quorum and says so.
    drop(second);
    let etcd = full(&first);
    let started = Instant::now();
    let message = loop {
        match etcd.health(&first.client_url) {
            Err(EtcdError::Unhealthy(m)) => break m,
            Ok(()) | Err(EtcdError::TimedOut(_)) => {}
            Err(e) => panic!("health without quorum: {e:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still healthy without quorum"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        message.contains(&format!("etcd at {} is not healthy", first.client_url))
            && message.contains("\"health\":\"false\""),
        "{message}"
    );
}
