//! A test-only plugin that does, on request, what a hostile or broken plugin would: escape its
//! file grants, run commands it may not, call the API outside its rules, loop forever, allocate
//! without bound, flood its output, panic. The sandbox tests run it and check that the host
//! refuses or stops each attempt, with a message that names the missing grant or broken limit.
//!
//! Settings: `{"action": "<name>", "path": "...", ...}`. A refused capability call is returned
//! as `phase-error::denied` carrying the host's message; a call that succeeds publishes its result
//! in the outputs (so a test can tell an escape from a refusal).

use serde_json::Value;
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{ErrorText, Findings, Plugin, etcd, exec, export_plugin, files, health, kube, log};

struct Probe;

fn setting<'a>(s: &'a Value, key: &str) -> &'a str {
    s.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn denied(text: String) -> PhaseError {
    PhaseError::Denied(text)
}

impl Plugin for Probe {
    fn describe() -> PluginInfo {
        // What an operator reads before granting anything: concealed text, a carriage return
        // and a forged digest line, and a settings example that sets the terminal's clipboard.
        let mut info = wasmadm_plugin_sdk::info(
            "sandbox-probe",
            &format!(
                "Test plugin that attacks the sandbox\x1b[8m\r\ndigest: sha256:{}",
                "0".repeat(64)
            ),
        );
        info.settings_example = "action: noop\n\x1b]52;c;ZWNobyBwd25lZA==\x07# clipboard".into();
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let s: Value = serde_json::from_str(&context.settings).unwrap_or(Value::Null);
        let path = setting(&s, "path");
        let mut report = Findings::default();
        match setting(&s, "action") {
            "read" => {
                let bytes = files::read(path).map_err(|e| denied(e.text()))?;
                report.output("content", String::from_utf8_lossy(&bytes));
            }
            "write" => {
                let mode = s.get("mode").and_then(Value::as_u64).unwrap_or(0o600) as u32;
                files::write(path, setting(&s, "content").as_bytes(), mode).map_err(|e| denied(e.text()))?;
                report.output("written", path);
            }
            "write-many" => {
                // `count` files `<path>/f<i>`, going on after failures; publishes how many were
                // written.
                let count = s.get("count").and_then(Value::as_u64).unwrap_or(1);
                let written = (0..count)
                    .filter(|i| files::write(&format!("{path}/f{i}"), b"x", 0o600).is_ok())
                    .count();
                report.output("written", written.to_string());
            }
            "list" => {
                let names = files::list_dir(path).map_err(|e| denied(e.text()))?;
                report.output("names", names.join(","));
            }
            "exec" => {
                let args: Vec<String> = s["args"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default();
                let out = exec::run(&exec::Command {
                    program: setting(&s, "program").into(),
                    args,
                    env: Vec::new(),
                    stdin: None,
                })
                .map_err(|e| denied(e.text()))?;
                report.output("stdout", String::from_utf8_lossy(&out.stdout));
                report.output("status", format!("{:?}", out.status));
                report.output("recorded", out.recorded.to_string());
            }
            "kube-get" | "kube-create" | "kube-list" | "kube-patch" => {
                // The resource-type record exactly as the settings say, however wrong.
                let ty = kube::ResourceType {
                    group: setting(&s, "group").into(),
                    version: s.get("version").and_then(Value::as_str).unwrap_or("v1").into(),
                    kind: setting(&s, "kind").into(),
                    plural: setting(&s, "plural").into(),
                    namespaced: s.get("namespaced").and_then(Value::as_bool).unwrap_or(true),
                };
                let client = kube::cluster().map_err(|e| denied(e.text()))?;
                let ns = s.get("namespace").and_then(Value::as_str);
                let name = setting(&s, "name");
                let result = match setting(&s, "action") {
                    "kube-get" => client.get(&ty, ns, name),
                    "kube-list" => client.list(&ty, ns, s.get("selector").and_then(Value::as_str)),
                    "kube-patch" => client.patch(
                        &ty,
                        ns,
                        name,
                        kube::PatchType::Merge,
                        r#"{"metadata":{"labels":{"probe":"x"}}}"#,
                    ),
                    _ => {
                        // `size`: pad the object's data to this many bytes.
                        let size = s.get("size").and_then(Value::as_u64).unwrap_or(0) as usize;
                        let object = serde_json::json!({"metadata": {"name": name}, "data": {"pad": "x".repeat(size)}});
                        client.create(&ty, ns, &object.to_string())
                    }
                };
                report.output("object", result.map_err(|e| denied(e.text()))?);
            }
            "sleep" => {
                // Served by WASI's monotonic clock: the guest is in the host, not running.
                std::thread::sleep(std::time::Duration::from_nanos(u64::MAX));
                report.output("woke", "yes");
            }
            "findings" => {
                // `count` findings of `size` bytes each, of `severity` (`warning` or `error`), or
                // the given `text` as a warning.
                let count = s.get("count").and_then(Value::as_u64).unwrap_or(1);
                let size = s.get("size").and_then(Value::as_u64).unwrap_or(16) as usize;
                let text = s
                    .get("text")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .unwrap_or_else(|| "f".repeat(size));
                let severity = match setting(&s, "severity") {
                    "error" => wasmadm_plugin_sdk::types::Severity::Error,
                    _ => wasmadm_plugin_sdk::types::Severity::Warning,
                };
                for i in 0..count {
                    log::report(&wasmadm_plugin_sdk::types::Finding {
                        check: format!("Probe{i}"),
                        severity,
                        message: text.clone(),
                    });
                }
            }
            "print" => log::print(setting(&s, "text")),
            "fail" => {
                // A phase-error of `size` bytes after `text`.
                let size = s.get("size").and_then(Value::as_u64).unwrap_or(0) as usize;
                return Err(PhaseError::Failed(format!(
                    "{}{}",
                    setting(&s, "text"),
                    "e".repeat(size)
                )));
            }
            "health" => {
                let timeout = s.get("timeoutMs").and_then(Value::as_u64).unwrap_or(2000) as u32;
                let r = health::get(setting(&s, "url"), timeout).map_err(|e| match e {
                    health::HealthError::Denied(m) => denied(m),
                    other => PhaseError::Failed(format!("{other:?}")),
                })?;
                report.output("status", r.status.to_string());
                report.output("body", r.body);
                report.output("truncated", r.truncated.to_string());
                report.output("origin", format!("{:?}", r.origin));
            }
            "etcd" => {
                // `op`: list, add-learner (`peerUrls`), promote or remove (`id`), health; at
                // `endpoint`. The members are published as `id name learner` lines.
                let endpoint = setting(&s, "endpoint");
                let id = s.get("id").and_then(Value::as_u64).unwrap_or(0);
                let shown = |members: &[etcd::Member]| {
                    let lines: Vec<String> = members
                        .iter()
                        .map(|m| format!("{} {} {}", m.id, m.name, m.is_learner))
                        .collect();
                    lines.join("\n")
                };
                let refused = |e: etcd::EtcdError| match e {
                    etcd::EtcdError::Denied(m) => denied(m),
                    other => PhaseError::Failed(format!("{other:?}")),
                };
                match setting(&s, "op") {
                    "list" => report.output("members", shown(&etcd::member_list(endpoint).map_err(refused)?)),
                    "add-learner" => {
                        let peers: Vec<String> = s["peerUrls"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                            .unwrap_or_default();
                        let (new, members) = etcd::member_add_learner(endpoint, &peers).map_err(refused)?;
                        report.output("added", shown(&[new]));
                        report.output("members", shown(&members));
                    }
                    "promote" => etcd::member_promote(endpoint, id).map_err(refused)?,
                    "remove" => etcd::member_remove(endpoint, id).map_err(refused)?,
                    _ => etcd::health(endpoint).map_err(refused)?,
                }
            }
            "etcd-join" => {
                // kubeadm's etcd-join membership: this node's member (`peerUrl`) added as a learner
                // at `endpoint`, the `--initial-cluster` it starts with written to `path` (the test
                // plays the kubelet and starts it from there), then promoted once it caught up.
                let endpoints = vec![setting(&s, "endpoint").to_string()];
                let timeout = std::time::Duration::from_secs(60);
                let (id, members) = kubeadm_etcd::add_learner(&endpoints, setting(&s, "peerUrl"), timeout)?;
                let cluster = kubeadm_etcd::initial_cluster(&members, id, setting(&s, "name"));
                files::write(path, cluster.as_bytes(), 0o600).map_err(|e| denied(e.text()))?;
                kubeadm_etcd::promote(&endpoints, id, timeout)?;
                report.output("id", id.to_string());
                report.output("initial-cluster", cluster);
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                report.output("env", vars.join(";"));
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    chunk[0] = 1;
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            "flood" => {
                let line = "x".repeat(1000);
                for _ in 0..100_000 {
                    println!("{line}");
                    log::print(&line);
                }
                report.output("flooded", "yes");
            }
            "noop" => {}
            "stat-loop" => {
                let count = s.get("count").and_then(Value::as_u64).unwrap_or(1);
                for _ in 0..count {
                    files::stat(path).map_err(|e| denied(e.text()))?;
                }
            }
            "panic" => panic!("the probe panicked on purpose"),
            "warn" => {
                report.warning("ProbeWarning", "a warning");
                report.error("ProbeError", "an error");
            }
            other => return Err(PhaseError::InvalidConfig(format!("unknown action {other:?}"))),
        }
        Ok(report.into_report())
    }
}

export_plugin!(Probe);
