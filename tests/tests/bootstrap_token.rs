//! The `bootstrap-token` and `show-join-command` phases after `certs` and `kubeconfig`, on a
//! fresh fixture node with the in-memory cluster, against real kubeadm's objects (`api/`), console
//! (`init-output.txt`) and the bootstrap signer's JWS (`jws-vector.json`); the pin and the JWS
//! are recomputed with the openssl CLI. Then `wasmadm token` create/list/delete on a persisted
//! in-memory cluster.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmadm::cluster::memory::MemoryCluster;
use wasmadm::cluster::{Cluster, ResourceType};
use wasmadm::config::kubeadm::Flags;
use wasmadm::config::pipeline::Pipeline;
use wasmadm::token::{self, CreateOptions};
use wasmadm_tests::{Outcome, Run, default_pipeline_of, fixture, node, openssl, reference_object};

const RBAC: &str = "rbac.authorization.k8s.io";

/// The reference objects the bootstrap-token phase creates: (file, group, plural, namespace).
const REFERENCE: &[(&str, &str, &str, Option<&str>)] = &[
    // kubeadm's admin bootstrap, which every API phase ensures first (SDK `apply::cluster`).
    (
        "cluster.clusterrolebinding.kubeadm_cluster-admins.yaml",
        RBAC,
        "clusterrolebindings",
        None,
    ),
    (
        "cluster.clusterrole.kubeadm_get-nodes.yaml",
        RBAC,
        "clusterroles",
        None,
    ),
    (
        "cluster.clusterrolebinding.kubeadm_get-nodes.yaml",
        RBAC,
        "clusterrolebindings",
        None,
    ),
    (
        "cluster.clusterrolebinding.kubeadm_kubelet-bootstrap.yaml",
        RBAC,
        "clusterrolebindings",
        None,
    ),
    (
        "cluster.clusterrolebinding.kubeadm_node-autoapprove-bootstrap.yaml",
        RBAC,
        "clusterrolebindings",
        None,
    ),
    (
        "cluster.clusterrolebinding.kubeadm_node-autoapprove-certificate-rotation.yaml",
        RBAC,
        "clusterrolebindings",
        None,
    ),
    (
        "cluster.clusterrolebinding.kubeadm_apiserver-kubelet-client.yaml",
        RBAC,
        "clusterrolebindings",
        None,
    ),
    (
        "kube-public.Role.kubeadm_bootstrap-signer-clusterinfo.yaml",
        RBAC,
        "roles",
        Some("kube-public"),
    ),
    (
        "kube-public.RoleBinding.kubeadm_bootstrap-signer-clusterinfo.yaml",
        RBAC,
        "rolebindings",
        Some("kube-public"),
    ),
    (
        "kube-public.cm.cluster-info.yaml",
        "",
        "configmaps",
        Some("kube-public"),
    ),
    (
        "kube-system.secret.bootstrap-token-abcdef.yaml",
        "",
        "secrets",
        Some("kube-system"),
    ),
];

fn ty(group: &str, plural: &str, namespaced: bool) -> ResourceType {
    let kind = match plural {
        "clusterroles" => "ClusterRole",
        "clusterrolebindings" => "ClusterRoleBinding",
        "roles" => "Role",
        "rolebindings" => "RoleBinding",
        "configmaps" => "ConfigMap",
        _ => "Secret",
    };
    ResourceType::v1(group, kind, plural, namespaced)
}

/// The default pipeline with only the phases these tests need (others need a running node).
fn pipeline() -> Pipeline {
    default_pipeline_of(&["certs", "kubeconfig", "bootstrap-token", "show-join-command"])
}

/// The reference configuration with ECDSA keys (fast in wasm); `init_extra` replaces the
/// bootstrapTokens list, `cluster_extra` is appended to the ClusterConfiguration.
fn config(dir: &Path, tokens: &str, cluster_extra: &str) -> PathBuf {
    let base = std::fs::read_to_string(fixture("init-config.yaml")).expect("fixture");
    let base = base.replace("bootstrapTokens:\n- token: abcdef.0123456789abcdef\n", tokens);
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!("{base}encryptionAlgorithm: ECDSA-P256\n{cluster_extra}"),
    )
    .expect("write");
    path
}

struct Node {
    root: tempfile::TempDir,
    cluster: Arc<MemoryCluster>,
    config: PathBuf,
}

impl Node {
    fn new(tokens: &str, cluster_extra: &str) -> Self {
        let root = node("healthy");
        let config = config(root.path(), tokens, cluster_extra);
        Self {
            root,
            cluster: Arc::new(MemoryCluster::new()),
            config,
        }
    }

    fn run(&self, only: Option<&str>) -> Outcome {
        let pipeline = pipeline();
        let mut run = Run::new(&pipeline, self.root.path());
        run.config = Some(&self.config);
        run.flags = Flags::default();
        run.cluster = Some(self.cluster.clone() as Arc<dyn Cluster>);
        run.only = only.map(|p| (p.to_string(), None));
        let out = run.go();
        out.expect_ok();
        out
    }

    fn get(&self, group: &str, plural: &str, ns: Option<&str>, name: &str) -> Value {
        self.cluster
            .get(ty(group, plural, ns.is_some()).collection(ns), name)
            .unwrap_or_else(|e| panic!("{plural} {name}: {e}"))
    }

    fn ca_path(&self) -> String {
        self.root
            .path()
            .join("etc/kubernetes/pki/ca.crt")
            .display()
            .to_string()
    }
}

fn init_output() -> Vec<String> {
    std::fs::read_to_string(fixture("reference/init-output.txt"))
        .expect("init-output")
        .lines()
        .map(str::to_string)
        .collect()
}

/// `sha256:<hex>` of the CA's public key, the way kubeadm's docs compute it with openssl.
fn openssl_pin(ca: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let pubkey = dir.path().join("pub.pem");
    let der = dir.path().join("pub.der");
    std::fs::write(&pubkey, openssl(&["x509", "-pubkey", "-noout", "-in", ca])).expect("write");
    openssl(&[
        "pkey",
        "-pubin",
        "-in",
        &pubkey.display().to_string(),
        "-outform",
        "der",
        "-out",
        &der.display().to_string(),
    ]);
    let digest = openssl(&["dgst", "-sha256", "-hex", &der.display().to_string()]);
    let hex = digest.trim().rsplit("= ").next().expect("digest");
    assert_eq!(hex.len(), 64, "{digest}");
    format!("sha256:{hex}")
}

/// The detached JWS recomputed with openssl's HMAC: header and payload base64url here, the MAC
/// by `openssl dgst -sha256 -hmac`.
fn openssl_jws(kubeconfig: &str, token_id: &str, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{token_id}"}}"#));
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(kubeconfig));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("signing-input");
    std::fs::write(&file, input).expect("write");
    let out = openssl(&[
        "dgst",
        "-sha256",
        "-hmac",
        secret,
        "-hex",
        &file.display().to_string(),
    ]);
    let hex = out.trim().rsplit("= ").next().expect("mac");
    let mac: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    assert_eq!(mac.len(), 32, "{out}");
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(mac))
}

#[test]
fn jws_matches_the_bootstrap_signers_vector_computed_independently() {
    let text = std::fs::read_to_string(fixture("reference/jws-vector.json")).expect("vector");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    let (token, kubeconfig, jws) = (
        v["token"].as_str().expect("token"),
        v["kubeconfig"].as_str().expect("kubeconfig"),
        v["jws-kubeconfig-abcdef"].as_str().expect("jws"),
    );
    let (id, secret) = token.split_once('.').expect("token");
    let independent = openssl_jws(kubeconfig, id, secret);
    assert_eq!(
        independent, jws,
        "openssl's HMAC gives the controller-manager's signature"
    );
    let parsed = kubeadm_bootstrap_token::Token::parse(token).expect("token");
    let ours = kubeadm_bootstrap_token::cluster_info::detached_jws(kubeconfig, &parsed);
    assert_eq!(ours.as_bytes(), jws.as_bytes());
    assert!(kubeadm_bootstrap_token::cluster_info::verify_detached_jws(
        kubeconfig, &parsed, jws
    ));
    let wrong = kubeadm_bootstrap_token::Token::parse("abcdef.0123456789abcdeg").expect("token");
    assert!(!kubeadm_bootstrap_token::cluster_info::verify_detached_jws(
        kubeconfig, &wrong, jws
    ));
    let other_id = kubeadm_bootstrap_token::Token::parse("abcdeg.0123456789abcdef").expect("token");
    assert!(!kubeadm_bootstrap_token::cluster_info::verify_detached_jws(
        kubeconfig, &other_id, jws
    ));
}

#[test]
fn init_writes_kubeadms_objects_lines_and_join_command() {
    let n = Node::new("bootstrapTokens:\n- token: abcdef.0123456789abcdef\n", "");
    let before = kubeadm_bootstrap_token::clock::now();
    let out = n.run(None);
    let after = kubeadm_bootstrap_token::clock::now();

    // Console: init-output.txt lines 68-75, then the closing message.
    let golden = init_output();
    let ours: Vec<&String> = out
        .stdout
        .iter()
        .filter(|l| l.starts_with("[bootstrap-token]"))
        .collect();
    assert_eq!(ours, golden[67..75].iter().collect::<Vec<_>>());
    let pin = openssl_pin(&n.ca_path());
    let start = golden
        .iter()
        .position(|l| l.starts_with("Your Kubernetes"))
        .expect("banner")
        - 1;
    let end = golden
        .iter()
        .position(|l| l.contains("--discovery-token-ca-cert-hash"))
        .expect("hash");
    let expected: Vec<String> = golden[start..=end]
        .iter()
        .map(|l| {
            l.replace("kubeadm join", "wasmadm join").replace(
                "sha256:2ccfe0df0eb62bcec5e787c4ab61697adef56d22060a9bd80f698d64621c58ea",
                &pin,
            )
        })
        .collect();
    let at = out.stdout.len() - expected.len();
    assert_eq!(
        out.stdout[at..],
        expected[..],
        "closing message, with our CA's pin"
    );
    assert!(
        expected.last().expect("line").ends_with(' '),
        "kubeadm's trailing space is kept"
    );
    assert_eq!(
        out.output("bootstrap-token.token").as_deref(),
        Some("abcdef.0123456789abcdef")
    );

    // Objects: everything but server-set metadata and run-to-run values equals kubeadm's.
    for (file, group, plural, ns) in REFERENCE {
        let want = reference_object(file);
        let name = want["metadata"]["name"].as_str().expect("name");
        let got = n.get(group, plural, *ns, name);
        for field in ["apiVersion", "kind", "rules", "roleRef", "subjects", "type"] {
            assert_eq!(got[field], want[field], "{file}: {field}");
        }
        assert_eq!(
            got["metadata"]["namespace"], want["metadata"]["namespace"],
            "{file}"
        );
        if *plural == "secrets" {
            let keys = |v: &Value| {
                v["data"]
                    .as_object()
                    .expect("data")
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(keys(&got), keys(&want), "{file}: data keys");
            for (k, v) in want["data"].as_object().expect("data") {
                if k != "expiration" {
                    assert_eq!(&got["data"][k], v, "{file}: data.{k}");
                }
            }
            let expiration = String::from_utf8(
                STANDARD
                    .decode(got["data"]["expiration"].as_str().expect("exp"))
                    .expect("b64"),
            )
            .expect("utf8");
            let t = kubeadm_bootstrap_token::clock::parse_rfc3339(&expiration).expect("RFC 3339");
            assert!(
                (before + 86_400..=after + 86_400).contains(&t),
                "{expiration} is 24h from now"
            );
        }
    }

    // cluster-info: kubeadm's kubeconfig with our CA, signed as the bootstrap signer signs.
    let want = reference_object("kube-public.cm.cluster-info.yaml");
    let got = n.get("", "configmaps", Some("kube-public"), "cluster-info");
    let ca = std::fs::read(n.ca_path()).expect("ca.crt");
    let want_kubeconfig = want["data"]["kubeconfig"].as_str().expect("kubeconfig");
    let reference_ca = want_kubeconfig
        .split("certificate-authority-data: ")
        .nth(1)
        .and_then(|s| s.split('\n').next())
        .expect("ca data");
    let kubeconfig = got["data"]["kubeconfig"].as_str().expect("kubeconfig");
    assert_eq!(
        kubeconfig,
        want_kubeconfig.replace(reference_ca, &STANDARD.encode(&ca))
    );
    let keys: Vec<&String> = got["data"].as_object().expect("data").keys().collect();
    assert_eq!(keys, ["jws-kubeconfig-abcdef", "kubeconfig"]);
    assert_eq!(
        got["data"]["jws-kubeconfig-abcdef"].as_str(),
        Some(openssl_jws(kubeconfig, "abcdef", "0123456789abcdef").as_str())
    );

    // Nothing else: the phase writes exactly the reference objects.
    assert_eq!(n.cluster.objects().len(), REFERENCE.len());
}

#[test]
fn second_run_changes_nothing() {
    let n = Node::new("bootstrapTokens:\n- token: abcdef.0123456789abcdef\n", "");
    n.run(None);
    let before = n.cluster.objects();
    let out = n.run(Some("bootstrap-token"));
    assert_eq!(n.cluster.objects(), before, "same objects, same resourceVersions");
    assert!(
        out.stdout
            .iter()
            .any(|l| l.contains("Using token: abcdef.0123456789abcdef"))
    );

    // A stored expiry from the TTL that is still in the future is kept, not extended.
    let name = "bootstrap-token-abcdef";
    let mut secret = n.get("", "secrets", Some("kube-system"), name);
    let soon = kubeadm_bootstrap_token::clock::format_rfc3339(kubeadm_bootstrap_token::clock::now() + 600);
    secret["data"]["expiration"] = STANDARD.encode(&soon).into();
    n.cluster
        .update(
            ty("", "secrets", true).collection(Some("kube-system")),
            secret,
            false,
        )
        .expect("update");
    let stored = n.get("", "secrets", Some("kube-system"), name);
    n.run(Some("bootstrap-token"));
    assert_eq!(n.get("", "secrets", Some("kube-system"), name), stored);

    // A changed RBAC object is put back, keeping what the phase does not own.
    let mut binding = n.get(RBAC, "clusterrolebindings", None, "kubeadm:get-nodes");
    binding["subjects"] = serde_json::json!([]);
    binding["metadata"]["labels"] = serde_json::json!({"team": "x"});
    n.cluster
        .update(
            ty(RBAC, "clusterrolebindings", false).collection(None),
            binding,
            false,
        )
        .expect("update");
    n.run(Some("bootstrap-token"));
    let fixed = n.get(RBAC, "clusterrolebindings", None, "kubeadm:get-nodes");
    assert_eq!(
        fixed["subjects"],
        reference_object("cluster.clusterrolebinding.kubeadm_get-nodes.yaml")["subjects"]
    );
    assert_eq!(fixed["metadata"]["labels"]["team"], "x");
}

#[test]
fn a_token_is_generated_when_none_is_configured() {
    let n = Node::new("", "controlPlaneEndpoint: cp.example:6443\n");
    let out = n.run(None);
    let token = out.output("bootstrap-token.token").expect("token output");
    let parsed = kubeadm_bootstrap_token::Token::parse(&token).expect("generated token has the format");
    assert!(
        out.stdout
            .contains(&format!("[bootstrap-token] Using token: {token}"))
    );
    let secret = n.get(
        "",
        "secrets",
        Some("kube-system"),
        &format!("bootstrap-token-{}", parsed.id),
    );
    let spec = kubeadm_bootstrap_token::TokenSpec::from_secret(&secret).expect("token Secret");
    assert_eq!(spec.token, parsed);
    // With a configuration file, kubeadm gives the generated token no description.
    assert_eq!(spec.description, "");

    // controlPlaneEndpoint: the control-plane variant first (no uploaded certificates here).
    let pin = openssl_pin(&n.ca_path());
    let text = out.stdout.join("\n");
    assert!(
        text.contains(&format!(
            "You can now join any number of control-plane nodes by copying certificate authorities\n\
             and service account keys on each node and then running the following as root:\n\n  \
             wasmadm join cp.example:6443 --token {token} \\\n\t--discovery-token-ca-cert-hash {pin} \\\n\t--control-plane \n\n\
             Then you can join any number of worker nodes by running the following on each as root:\n\n\
             wasmadm join cp.example:6443 --token {token} \\\n\t--discovery-token-ca-cert-hash {pin} "
        )),
        "{text}"
    );
}

#[test]
fn token_commands_round_trip_on_a_persisted_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let open = || MemoryCluster::open(&state).expect("state");
    let opts = |token: Option<&str>, ttl: &str| CreateOptions {
        token: token.map(str::to_string),
        ttl: ttl.into(),
        description: "for CI".into(),
        usages: vec!["signing".into(), "authentication".into()],
        groups: vec![kubeadm_bootstrap_token::DEFAULT_GROUP.into()],
    };
    let now = kubeadm_bootstrap_token::clock::now();
    let kubeconfig = "apiVersion: v1\nclusters: []\n";
    let cluster_info = ResourceType::v1("", "ConfigMap", "configmaps", true);
    let cm = kubeadm_bootstrap_token::cluster_info::config_map(kubeconfig);
    open()
        .create(cluster_info.collection(Some("kube-public")), cm, false)
        .expect("cluster-info");
    let created = token::create(&open(), &opts(Some("abcdef.0123456789abcdef"), "2h"), now).expect("create");
    let generated = token::create(&open(), &opts(None, "0"), now).expect("create");
    let err = token::create(&open(), &opts(Some("abcdef.0123456789abcdef"), "2h"), now).expect_err("exists");
    assert!(
        err.to_string()
            .contains("a token with id \"abcdef\" already exists"),
        "{err}"
    );

    // A new process (a new MemoryCluster on the same file) sees both.
    let (listed, problems) = token::list(&open()).expect("list");
    assert!(problems.is_empty(), "{problems:?}");
    let ids: Vec<&str> = listed.iter().map(|t| t.token.id.as_str()).collect();
    assert!(
        ids.contains(&"abcdef") && ids.contains(&generated.token.id.as_str()),
        "{ids:?}"
    );
    let table = token::table(&listed, now * 1000 + 500);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "TOKEN                     TTL         EXPIRES                USAGES                   DESCRIPTION   EXTRA GROUPS"
    );
    let expires = kubeadm_bootstrap_token::clock::format_rfc3339(now + 7200);
    assert!(lines.contains(&format!(
        "abcdef.0123456789abcdef   1h          {expires}   authentication,signing   for CI        system:bootstrappers:kubeadm:default-node-token"
    ).as_str()), "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{}   <forever>   <never>", generated.token))),
        "{table}"
    );
    assert_eq!(token::output_object(&created)["expires"], expires.as_str());

    // The signing token signed cluster-info, as the bootstrap signer would.
    let signed = open()
        .get(cluster_info.collection(Some("kube-public")), "cluster-info")
        .expect("cluster-info");
    assert_eq!(
        signed["data"]["jws-kubeconfig-abcdef"].as_str(),
        Some(openssl_jws(kubeconfig, "abcdef", "0123456789abcdef").as_str())
    );

    // delete by ID and by whole token
    assert_eq!(token::delete(&open(), "abcdef").expect("delete"), "abcdef");
    assert_eq!(
        token::delete(&open(), &generated.token.to_string()).expect("delete"),
        generated.token.id
    );
    assert!(token::list(&open()).expect("list").0.is_empty());
    let unsigned = open()
        .get(cluster_info.collection(Some("kube-public")), "cluster-info")
        .expect("cluster-info");
    let keys: Vec<&String> = unsigned["data"].as_object().expect("data").keys().collect();
    assert_eq!(keys, ["kubeconfig"], "signatures of deleted tokens are removed");
    let err = token::delete(&open(), "abcdef").expect_err("gone").to_string();
    assert!(
        err.contains("failed to delete bootstrap token \"abcdef\""),
        "{err}"
    );
}

#[test]
fn bad_tokens_are_named_with_the_expected_format() {
    let cluster = MemoryCluster::new();
    let opts = CreateOptions {
        token: Some("Abcdef.0123456789abcdef".into()),
        ttl: "24h".into(),
        description: String::new(),
        usages: vec!["signing".into()],
        groups: Vec::new(),
    };
    let err = token::create(&cluster, &opts, 0)
        .expect_err("bad token")
        .to_string();
    assert!(err.contains("\"Abcdef.0123456789abcdef\""), "{err}");
    assert!(err.contains("[a-z0-9]{6}.[a-z0-9]{16}"), "{err}");
    let err = token::delete(&cluster, "abc.def")
        .expect_err("bad id")
        .to_string();
    assert!(
        err.contains("\"abc.def\"") && err.contains("[a-z0-9]{6}"),
        "{err}"
    );
    let bad_usage = CreateOptions {
        token: None,
        usages: vec!["signin".into()],
        ..opts
    };
    let err = token::create(&cluster, &bad_usage, 0)
        .expect_err("bad usage")
        .to_string();
    assert!(
        err.contains("\"signin\"") && err.contains("signing, authentication"),
        "{err}"
    );
    assert!(cluster.objects().is_empty(), "nothing was written");
}

#[test]
fn print_join_command_uses_the_kubeconfig_and_openssls_pin() {
    let n = Node::new("bootstrapTokens:\n- token: abcdef.0123456789abcdef\n", "");
    let pipeline = pipeline();
    for phase in ["certs", "kubeconfig"] {
        let mut run = Run::new(&pipeline, n.root.path());
        run.config = Some(&n.config);
        run.only = Some((phase.into(), Some("all".into())));
        let out = run.go();
        assert!(
            out.result.is_ok(),
            "{phase}: {:?} {:?}",
            out.result.err().map(|e| e.to_string()),
            out.stderr
        );
    }
    let admin = std::fs::read_to_string(n.root.path().join("etc/kubernetes/admin.conf")).expect("admin.conf");
    let t = kubeadm_bootstrap_token::Token::parse("abcdef.0123456789abcdef").expect("token");
    let pin = openssl_pin(&n.ca_path());
    assert_eq!(
        token::join_command(&admin, &t, None).expect("join"),
        format!(
            "wasmadm join 10.200.0.2:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash {pin} "
        )
    );
    assert_eq!(
        token::join_command(&admin, &t, Some("0f1e")).expect("join"),
        format!(
            "wasmadm join 10.200.0.2:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash {pin} --control-plane --certificate-key 0f1e"
        )
    );
}

#[test]
fn the_bootstrap_token_phase_names_every_object_but_the_token_secrets() {
    // That it is granted exactly what it asks for: tests/builtins.rs.
    let bootstrap = pipeline()
        .init
        .0
        .into_iter()
        .find(|s| s.name.0 == "bootstrap-token")
        .expect("phase");
    // Token Secrets only in kube-system; everything else by name.
    let rules = &bootstrap.grants.kube;
    assert!(
        rules
            .iter()
            .all(|r| !r.verbs.iter().any(|v| v == "delete" || v == "*"))
    );
    assert!(rules.iter().all(
        |r| !r.resource_names.is_empty() || r.resources == ["secrets"] && r.namespaces == ["kube-system"]
    ));
}

#[test]
fn init_without_a_configuration_file_describes_its_token_as_kubeadm_does() {
    use wasmadm::config::kubeadm;
    let flags = Flags {
        init: kubeadm::InitFlags {
            apiserver_advertise_address: Some("10.200.0.2".into()),
            ..Default::default()
        },
        ..Flags::default()
    };
    let config = kubeadm::resolve(None, wasmadm::runtime::Command::Init, &flags, "n1").expect("config");
    let tokens = config.init.expect("init").bootstrap_tokens;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].token, "", "generated by the phase");
    assert_eq!(
        tokens[0].description.as_deref(),
        Some("The default bootstrap token generated by 'kubeadm init'.")
    );
    let file = fixture("init-config.yaml");
    let config = kubeadm::resolve(
        Some(&file),
        wasmadm::runtime::Command::Init,
        &Flags::default(),
        "n1",
    )
    .expect("config");
    assert_eq!(config.init.expect("init").bootstrap_tokens[0].description, None);
}

#[test]
fn several_tokens_each_get_a_secret_and_a_join_command_and_signing_ones_a_signature() {
    let n = Node::new(
        "bootstrapTokens:\n- token: abcdef.0123456789abcdef\n\
         - token: zyxwvu.9876543210zyxwvu\n  usages: [authentication]\n  ttl: \"0\"\n  description: workers\n",
        "",
    );
    let out = n.run(None);
    assert!(out.stdout.contains(
        &"[bootstrap-token] Using tokens: [abcdef.0123456789abcdef zyxwvu.9876543210zyxwvu]".to_string()
    ));
    assert_eq!(
        out.output("bootstrap-token.tokens").as_deref(),
        Some("abcdef.0123456789abcdef,zyxwvu.9876543210zyxwvu")
    );
    let second = n.get("", "secrets", Some("kube-system"), "bootstrap-token-zyxwvu");
    let spec = kubeadm_bootstrap_token::TokenSpec::from_secret(&second).expect("token");
    assert_eq!(
        (spec.expires, spec.usages, spec.description),
        (None, vec!["authentication".to_string()], "workers".to_string())
    );
    for token in ["abcdef.0123456789abcdef", "zyxwvu.9876543210zyxwvu"] {
        let joins = out
            .stdout
            .iter()
            .filter(|l| l.starts_with(&format!("wasmadm join 10.200.0.2:6443 --token {token} ")))
            .count();
        assert_eq!(joins, 1, "{token}: {:#?}", out.stdout);
    }
    let cm = n.get("", "configmaps", Some("kube-public"), "cluster-info");
    let keys: Vec<&String> = cm["data"].as_object().expect("data").keys().collect();
    assert_eq!(
        keys,
        ["jws-kubeconfig-abcdef", "kubeconfig"],
        "only signing tokens sign"
    );
}
