//! What wasmadm and real kubeadm left behind for the same input, compared: the files a node got
//! (paths and modes), static Pod manifests and kubelet files byte for byte, certificates field by
//! field (parsed), kubeconfigs by structure, the API objects each tool created, and the console
//! output. Run to run values (keys, serials, dates, tokens, hashes, durations) are masked first.
//!
//! Every intended difference is in [`ALLOWED`], with its reason: one list, so a reader sees at once
//! where wasmadm differs from kubeadm on purpose.

use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A difference that is intended: wasmadm's side is rewritten by `from` → `to` (a regex and its
/// replacement) in `area` before comparing.
pub struct Allowed {
    /// `console`, or a node path of a file.
    pub area: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: &'static str,
}

/// The intended differences from kubeadm.
pub const ALLOWED: &[Allowed] = &[Allowed {
    area: "console",
    from: r"\bwasmadm (join|init phase)\b",
    to: "kubeadm $1",
    reason: "the commands printed for the operator (join, re-upload the certificates) run wasmadm, \
             which does what kubeadm's do",
}];

/// Files of a node that are not the tool's output: etcd's data, the kubelet's own files.
const NOT_WRITTEN_BY_THE_TOOL: [&str; 2] = ["var/lib/etcd/member", "var/lib/kubelet/pki"];

/// The files and directories under `root` (relative paths) with their modes.
pub fn files(root: &Path) -> BTreeMap<String, u32> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u32>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("under root").display().to_string();
            if NOT_WRITTEN_BY_THE_TOOL.iter().any(|p| rel.starts_with(p)) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            use std::os::unix::fs::PermissionsExt;
            out.insert(rel, meta.permissions().mode() & 0o7777);
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Masks what differs from run to run in console output.
pub fn mask_console(text: &str) -> Vec<String> {
    let rules = [
        (r"[a-z0-9]{6}\.[a-z0-9]{16}", "<token>"),
        (r"sha256:[0-9a-f]{64}", "sha256:<hash>"),
        (r"\b[0-9a-f]{64}\b", "<key>"),
        (r"\b[0-9]+(\.[0-9]+)?(ns|µs|us|ms|s|m|h)\b", "<duration>"),
    ];
    let rules: Vec<(Regex, &str)> = rules
        .iter()
        .map(|(r, t)| (Regex::new(r).expect("regex"), *t))
        .collect();
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            rules
                .iter()
                .fold(l.to_string(), |l, (r, t)| r.replace_all(&l, *t).into_owned())
        })
        .collect();
    // Both tools check the control-plane components at once and print each as it turns healthy:
    // the order of those lines is the components' start-up race, not the tool's.
    sort_runs(&mut lines, |l| {
        l.starts_with("[control-plane-check] ") && l.contains(" is healthy after ")
    });
    lines
}

/// Sorts each run of consecutive lines that match `unordered` (lines whose order is not the
/// tool's), leaving every other line where it is.
pub fn sort_runs(lines: &mut [String], unordered: impl Fn(&String) -> bool) {
    let mut i = 0;
    while i < lines.len() {
        let run = lines[i..].iter().take_while(|l| unordered(l)).count();
        lines[i..i + run].sort();
        i += run.max(1);
    }
}

/// Applies [`ALLOWED`] for `area` to wasmadm's side.
pub fn allowed(area: &str, text: &str) -> String {
    ALLOWED
        .iter()
        .filter(|a| a.area == area)
        .fold(text.to_string(), |t, a| {
            Regex::new(a.from)
                .expect("allow-list regex")
                .replace_all(&t, a.to)
                .into_owned()
        })
}

/// The differences between two texts, line by line (`-` kubeadm, `+` wasmadm), or `None`.
pub fn diff_lines(kubeadm: &[String], wasmadm: &[String]) -> Option<String> {
    if kubeadm == wasmadm {
        return None;
    }
    let mut out = String::new();
    let n = kubeadm.len().max(wasmadm.len());
    for i in 0..n {
        let (k, w) = (kubeadm.get(i), wasmadm.get(i));
        if k != w {
            if let Some(k) = k {
                out.push_str(&format!("  line {:>3} - {k}\n", i + 1));
            }
            if let Some(w) = w {
                out.push_str(&format!("  line {:>3} + {w}\n", i + 1));
            }
        }
    }
    Some(out)
}

/// A certificate's facts that must match: everything but keys, serials and dates.
pub fn certificate_facts(pem: &[u8]) -> Result<BTreeMap<&'static str, String>, String> {
    use x509_parser::prelude::*;
    let (_, pem) = parse_x509_pem(pem).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    let mut facts = BTreeMap::new();
    facts.insert("subject", cert.subject().to_string());
    facts.insert("issuer", cert.issuer().to_string());
    let key = cert.public_key();
    facts.insert(
        "key",
        match key.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => format!("RSA-{}", rsa.key_size()),
            Ok(x509_parser::public_key::PublicKey::EC(ec)) => format!(
                "EC-{} {}",
                ec.key_size(),
                key.algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default()
            ),
            Ok(_) | Err(_) => key.algorithm.algorithm.to_id_string(),
        },
    );
    let mut sans = Vec::new();
    let mut extensions = Vec::new();
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                sans = san.general_names.iter().map(|n| n.to_string()).collect();
            }
            ParsedExtension::KeyUsage(ku) => facts.insert("keyUsage", ku.to_string()).map_or((), |_| ()),
            ParsedExtension::ExtendedKeyUsage(eku) => {
                facts.insert("extendedKeyUsage", format!("{eku:?}"));
            }
            ParsedExtension::BasicConstraints(bc) => {
                facts.insert(
                    "basicConstraints",
                    format!("CA:{} pathlen:{:?}", bc.ca, bc.path_len_constraint),
                );
            }
            _ => {}
        }
        extensions.push(format!(
            "{}{}",
            ext.oid.to_id_string(),
            if ext.critical { " critical" } else { "" }
        ));
    }
    extensions.sort();
    facts.insert("subjectAltName", sans.join(", "));
    facts.insert("extensions", extensions.join(", "));
    Ok(facts)
}

/// A kubeconfig with its key and certificate data replaced by placeholders.
pub fn kubeconfig_structure(text: &str) -> Value {
    fn mask(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if k.ends_with("-data") || k == "token" {
                        *v = Value::String(format!("<{k}>"));
                    } else {
                        mask(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(mask),
            _ => {}
        }
    }
    let mut v: Value = serde_yaml::from_str(text).unwrap_or(Value::Null);
    mask(&mut v);
    v
}

/// The API types whose objects are compared.
pub const OBJECT_TYPES: [&str; 11] = [
    "configmaps",
    "secrets",
    "serviceaccounts",
    "services",
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "deployments.apps",
    "daemonsets.apps",
    "nodes",
];

/// The objects of `list` (a `kubectl get -o json` list) that `manager` wrote (its
/// `managedFields`), normalized: server-set metadata and status removed, Secrets' data reduced to
/// their keys, certificates, keys and signatures masked. Keyed by `Kind namespace/name`.
pub fn objects_by(list: &Value, manager: &str) -> BTreeMap<String, Value> {
    // Owners named at random (upload-certs' two-hour token) are compared as one placeholder.
    let random_owners: BTreeSet<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["metadata"]["ownerReferences"].as_array().into_iter().flatten())
        .filter_map(|o| o["name"].as_str())
        .filter(|n| n.starts_with("bootstrap-token-"))
        .map(str::to_string)
        .collect();
    let mut out = BTreeMap::new();
    for item in list["items"].as_array().into_iter().flatten() {
        let mut item = item.clone();
        if item["metadata"]["name"]
            .as_str()
            .is_some_and(|n| random_owners.contains(n))
        {
            item["metadata"]["name"] = Value::String("bootstrap-token-<owner>".into());
        }
        for owner in item["metadata"]["ownerReferences"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if owner["name"].as_str().is_some_and(|n| random_owners.contains(n)) {
                owner["name"] = Value::String("bootstrap-token-<owner>".into());
            }
            if let Some(o) = owner.as_object_mut() {
                o.remove("uid");
            }
        }
        let item = &item;
        let managed = item["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|m| m.iter().any(|f| f["manager"] == manager));
        if !managed {
            continue;
        }
        let kind = item["kind"].as_str().unwrap_or_default();
        let key = format!(
            "{kind} {}/{}",
            item["metadata"]["namespace"].as_str().unwrap_or(""),
            item["metadata"]["name"].as_str().unwrap_or_default()
        );
        out.insert(key, normalize(item));
    }
    out
}

fn normalize(item: &Value) -> Value {
    let mut v = item.clone();
    let kind = v["kind"].as_str().unwrap_or_default().to_string();
    if let Some(meta) = v["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            for k in [
                "deprecated.daemonset.template.generation",
                "deployment.kubernetes.io/revision",
            ] {
                annotations.remove(k);
            }
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if let Some(map) = v.as_object_mut() {
        map.remove("status");
    }
    match kind.as_str() {
        "Secret" => {
            let keys: BTreeSet<String> = v["data"]
                .as_object()
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default();
            v["data"] = Value::Array(keys.into_iter().map(Value::String).collect());
        }
        "Node" => {
            // The node lifecycle controller's taints (`node.kubernetes.io/not-ready`, ...) come
            // and go with the Node's status, not with what the tool did.
            let taints: Vec<Value> = v["spec"]["taints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| {
                    !t["key"]
                        .as_str()
                        .is_some_and(|k| k.starts_with("node.kubernetes.io/"))
                })
                .cloned()
                .collect();
            v = serde_json::json!({
                "labels": v["metadata"]["labels"],
                "taints": taints,
            });
        }
        _ => {}
    }
    mask_values(&mut v);
    v
}

/// Masks certificates, keys, JWS signatures and long base64 blobs inside string values.
fn mask_values(v: &mut Value) {
    static RULES: std::sync::OnceLock<Vec<(Regex, &'static str)>> = std::sync::OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"(?s)-----BEGIN ([A-Z ]+)-----.*?-----END [A-Z ]+-----", "<$1>"),
            (r"[A-Za-z0-9+/=_-]{40,}\.\.[A-Za-z0-9+/=_-]{20,}", "<jws>"),
            (r"[A-Za-z0-9+/]{60,}={0,2}", "<data>"),
        ]
        .iter()
        .map(|(r, t)| (Regex::new(r).expect("regex"), *t))
        .collect()
    });
    match v {
        Value::String(s) => {
            for (r, t) in rules {
                *s = r.replace_all(s, *t).into_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_values),
        Value::Object(map) => map.values_mut().for_each(mask_values),
        _ => {}
    }
}

/// Differences between two maps of normalized objects (or files), one line each.
pub fn diff_maps(
    what: &str,
    kubeadm: &BTreeMap<String, Value>,
    wasmadm: &BTreeMap<String, Value>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in kubeadm {
        match wasmadm.get(k) {
            None => out.push(format!("{what} {k}: kubeadm has it, wasmadm does not")),
            Some(w) if w != v => out.push(format!(
                "{what} {k} differs:\n  kubeadm: {}\n  wasmadm: {}",
                serde_json::to_string(v).unwrap_or_default(),
                serde_json::to_string(w).unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    for k in wasmadm.keys().filter(|k| !kubeadm.contains_key(*k)) {
        out.push(format!("{what} {k}: wasmadm has it, kubeadm does not"));
    }
    out
}

/// Everything [`compare`] looks at on one node after one tool ran.
pub struct Side<'a> {
    pub node: &'a crate::cluster::Node,
    /// What the tool printed on stdout.
    pub stdout: &'a str,
    /// `kubeadm` or `wasmadm`: the field manager of the objects it wrote.
    pub manager: &'a str,
}

/// Node paths compared byte for byte when both tools wrote them.
const BYTE_FOR_BYTE: [&str; 7] = [
    "etc/kubernetes/manifests/etcd.yaml",
    "etc/kubernetes/manifests/kube-apiserver.yaml",
    "etc/kubernetes/manifests/kube-controller-manager.yaml",
    "etc/kubernetes/manifests/kube-scheduler.yaml",
    "var/lib/kubelet/config.yaml",
    "var/lib/kubelet/kubeadm-flags.env",
    "var/lib/kubelet/instance-config.yaml",
];

/// What [`compare`] found, and how much it compared (so an empty comparison cannot pass).
#[derive(Debug, Default)]
pub struct Comparison {
    /// Every difference after [`ALLOWED`]; empty when none.
    pub differences: Vec<String>,
    /// Files kubeadm wrote (each compared at least by path and mode).
    pub files: usize,
    /// Certificates compared field by field.
    pub certificates: usize,
    /// API objects kubeadm created (each compared), as `Kind namespace/name`.
    pub objects: Vec<String>,
    /// Console lines kubeadm printed.
    pub console_lines: usize,
}

/// Compares what kubeadm and wasmadm left, after [`ALLOWED`].
pub fn compare(kubeadm: &Side, wasmadm: &Side) -> Comparison {
    let mut counts = Comparison::default();
    let mut out = Vec::new();
    let (k_root, w_root) = (kubeadm.node.root.path(), wasmadm.node.root.path());

    // The files written, with their modes.
    let (k_files, w_files) = (files(k_root), files(w_root));
    let as_values = |m: &BTreeMap<String, u32>| -> BTreeMap<String, Value> {
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(format!("{v:o}"))))
            .collect()
    };
    out.extend(diff_maps("file", &as_values(&k_files), &as_values(&w_files)));
    counts.files = k_files.len();

    for (path, _) in k_files.iter().filter(|(p, _)| w_files.contains_key(*p)) {
        let (k, w) = (k_root.join(path), w_root.join(path));
        if BYTE_FOR_BYTE.contains(&path.as_str()) {
            let (k, w) = (read(&k), read(&w));
            let w = allowed(path, &w);
            if let Some(d) = diff_lines(&lines(&k), &lines(&w)) {
                out.push(format!("file {path} differs:\n{d}"));
            }
        } else if path.ends_with(".crt") {
            counts.certificates += 1;
            let facts = |p: &Path| certificate_facts(&std::fs::read(p).unwrap_or_default());
            match (facts(&k), facts(&w)) {
                (Ok(k), Ok(w)) if k == w => {}
                (k, w) => out.push(format!(
                    "certificate {path} differs:\n  kubeadm: {k:?}\n  wasmadm: {w:?}"
                )),
            }
        } else if path.starts_with("etc/kubernetes/") && path.ends_with(".conf") {
            let (k, w) = (kubeconfig_structure(&read(&k)), kubeconfig_structure(&read(&w)));
            if k != w {
                out.push(format!(
                    "kubeconfig {path} differs:\n  kubeadm: {k}\n  wasmadm: {w}"
                ));
            }
        }
    }

    // The API objects each tool wrote.
    for ty in OBJECT_TYPES {
        let (k, w) = (
            objects_by(
                &kubeadm.node.get_json(&[ty, "-A", "--show-managed-fields"]),
                kubeadm.manager,
            ),
            objects_by(
                &wasmadm.node.get_json(&[ty, "-A", "--show-managed-fields"]),
                wasmadm.manager,
            ),
        );
        counts.objects.extend(k.keys().cloned());
        out.extend(diff_maps("object", &k, &w));
    }

    // The console.
    let k = mask_console(kubeadm.stdout);
    let w = mask_console(&allowed("console", wasmadm.stdout));
    if let Some(d) = diff_lines(&k, &w) {
        out.push(format!("console output differs (- kubeadm, + wasmadm):\n{d}"));
    }
    counts.console_lines = k.len();
    Comparison {
        differences: out,
        ..counts
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}
