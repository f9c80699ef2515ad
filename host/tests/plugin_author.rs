//! What a plugin author meets on the command line: `plugin run` of one component against a node
//! directory, and the three bugs of issue 12 (a relative `--root` and exec, output into a closed
//! pipe, an error cause printed twice).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch directory holding `node/`, a copy of the healthy fixture node, and `cache/`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let node = repo().join("tests/fixtures/nodes/healthy");
        wasmadm::util::copy_tree(&node, &dir.path().join("node")).expect("copy the fixture node");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn node(&self) -> String {
        self.path("node").display().to_string()
    }

    /// A built-in plugin's component written out as a file, as an author's own would be.
    fn component(&self, builtin: &str) -> String {
        let b = wasmadm::builtin::get(builtin).expect("built-in plugin");
        let path = self.path(&format!("{builtin}.wasm"));
        std::fs::write(&path, b.wasm).expect("write component");
        path.display().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmadm"));
        cmd.args(args)
            .env("WASMADM_CACHE_DIR", self.path("cache"))
            .current_dir(self.dir.path());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run wasmadm")
    }

    /// `wasmadm --root <node> plugin run <component> <extra...>`.
    fn plugin_run(&self, component: &str, extra: &[&str]) -> Output {
        let node = self.node();
        self.run(&[&["--root", &node, "plugin", "run", component], extra].concat())
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

/// The findings of a JSON run as `(check, severity)`.
fn checks(v: &serde_json::Value) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["check"].as_str().expect("check").to_string(),
                f["severity"].as_str().expect("severity").to_string(),
            )
        })
        .collect()
}

/// The command failed with exit code 1 and a message containing `needle`.
/// Asserts that the command failed (exit code 1) saying each of `needles`; returns its stderr.
fn assert_refused(out: &std::process::Output, needles: &[&str]) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    stderr
}

#[test]
fn a_relative_root_runs_commands_as_an_absolute_one_does() {
    let s = Scratch::new();
    // `kubelet --version` is run by preflight through exec, from the node's /usr/bin.
    let out = s.run(&["--root", "node", "init", "phase", "preflight"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stderr.contains("cannot execute") && !stderr.contains("cannot start"),
        "{stderr}"
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let s = Scratch::new();
    // The reader is gone before wasmadm writes anything: its first write fails with EPIPE.
    let into_closed_pipe = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = s
            .command(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    let node = s.node();
    // Listing, and the token commands: no panic, no error: the reader just left.
    for args in [&["--root", &node, "phase", "list"][..], &["token", "generate"]] {
        assert_eq!(into_closed_pipe(args), "", "{args:?}");
    }
    // A run whose console is closed still does its work.
    into_closed_pipe(&["--root", &node, "init", "phase", "certs", "ca"]);
    assert!(s.path("node/etc/kubernetes/pki/ca.crt").is_file());
}

#[test]
fn a_digest_mismatch_is_reported_once() {
    let s = Scratch::new();
    let component = s.component("preflight");
    let pipeline = s.path("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: preflight\n    \
             component: {component}\n    digest: sha256:{}\n",
            "0".repeat(64)
        ),
    )
    .expect("write pipeline");
    let out = s.run(&[
        "--root",
        &s.node(),
        "--pipeline",
        &pipeline.display().to_string(),
        "init",
    ]);
    let stderr = assert_refused(&out, &["update `digest:` in the pipeline file"]);
    assert_eq!(stderr.matches("it was not loaded").count(), 1, "{stderr}");
}

#[test]
fn plugin_run_runs_one_component_with_the_grants_it_asks_for() {
    let s = Scratch::new();
    let component = s.component("preflight");
    let out = s.plugin_run(&component, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("[preflight] Running pre-flight checks\n"),
        "{stdout}"
    );
    let digest = wasmadm::builtin::get("preflight").expect("preflight").digest();
    assert!(
        stderr.contains(&format!("[plugin] preflight 0.1.0 (sha256:{digest}): 0 errors")),
        "{stderr}"
    );
    // No cluster was asked for: none was simulated or saved.
    assert!(!s.path("node/var/lib/wasmadm/in-memory-cluster.json").exists());
}

#[test]
fn plugin_run_reports_failed_checks_as_kubeadm_and_as_json() {
    let s = Scratch::new();
    std::fs::write(s.path("node/proc/meminfo"), "MemTotal: 1000 kB\n").expect("write");
    let component = s.component("preflight");
    let out = s.plugin_run(&component, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("\t[ERROR Mem]: the system RAM (0 MB) is less than the minimum 1700 MB"),
        "{}",
        text(&out.stderr)
    );

    let out = s.plugin_run(&component, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["exitCode"], 2);
    assert_eq!(v["plugin"]["name"], "preflight");
    assert!(checks(&v).contains(&("Mem".into(), "error".into())), "{v:#}");
    assert_eq!(v["console"][0]["line"], "[preflight] Running pre-flight checks");

    // --ignore-preflight-errors demotes it, as in kubeadm.
    let out = s.plugin_run(&component, &["-o", "json", "--ignore-preflight-errors", "mem"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(checks(&json(&out)).contains(&("Mem".into(), "warning".into())));
}

#[test]
fn plugin_run_lists_effects_of_a_dry_run_and_objects_of_the_memory_cluster() {
    let s = Scratch::new();
    let certs = s.component("certs");
    let out = s.plugin_run(&certs, &["--dry-run", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&out);
    let ca = v["effects"]
        .as_array()
        .expect("effects")
        .iter()
        .find(|e| e["path"] == "/etc/kubernetes/pki/ca.crt")
        .unwrap_or_else(|| panic!("no write of ca.crt in {v:#}"));
    assert_eq!(ca["kind"], "writeFile");
    assert!(
        ca["text"]
            .as_str()
            .expect("text")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        !s.path("node/etc/kubernetes/pki/ca.crt").exists(),
        "dry-run wrote nothing"
    );

    let upload = s.component("upload-config");
    let out = s.run(&[
        "--root",
        &s.node(),
        "--cluster",
        "memory",
        "plugin",
        "run",
        &upload,
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&out);
    let names: Vec<&str> = v["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert!(names.contains(&"kubeadm-config"), "{names:?}");
    assert!(!s.path("node/var/lib/wasmadm/in-memory-cluster.json").exists());
}

#[test]
fn plugin_run_with_fewer_grants_names_the_missing_one() {
    let s = Scratch::new();
    let component = s.component("preflight");
    let grants = s.path("grants.yaml");
    let run_with = |block: &str| {
        std::fs::write(&grants, block).expect("write");
        let out = s.plugin_run(&component, &["--grants", grants.to_str().expect("utf8")]);
        (out.status.code(), text(&out.stderr))
    };
    let (code, stderr) = run_with("grants:\n  files:\n    read: [/etc]\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("/proc/self/status") && stderr.contains("grants.files.read"),
        "{stderr}"
    );

    let (code, stderr) = run_with("grants:\n  file:\n    read: [/etc]\n");
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains(&format!("{}:2:", grants.display())) && stderr.contains("unknown field `file`"),
        "{stderr}"
    );
}

#[test]
fn plugin_run_of_a_missing_file_says_to_build_it() {
    let s = Scratch::new();
    let out = s.plugin_run("nope.wasm", &[]);
    assert_refused(
        &out,
        &["component nope.wasm does not exist", "wasmadm plugin build"],
    );
}

#[test]
fn plugin_run_without_root_does_not_default_to_this_machine() {
    let s = Scratch::new();
    let component = s.component("preflight");
    // Whether --root comes before or after the subcommand, it must be typed; `/` is allowed then.
    let out = s.run(&["plugin", "run", &component]);
    assert_refused(&out, &["plugin run needs --root DIR"]);
    let out = s.run(&["plugin", "run", &component, "--root", &s.node(), "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = s.run(&["--root", "/", "plugin", "run", &component, "--dry-run"]);
    assert!(
        !text(&out.stderr).contains("needs --root"),
        "{}",
        text(&out.stderr)
    );
}

/// One command of the tutorial, with what its comment says it does.
struct Step {
    command: String,
    exit: i32,
    shows: Option<String>,
}

/// The shell commands between `<!-- tutorial-start -->` and `<!-- tutorial-end -->` of
/// docs/plugins.md; a trailing `# exit N, shows: TEXT` gives the expected exit code and output.
fn tutorial_steps() -> Vec<Step> {
    let doc = std::fs::read_to_string(repo().join("docs/plugins.md")).expect("docs/plugins.md");
    let start = doc
        .find("<!-- tutorial-start -->")
        .expect("tutorial start marker");
    let end = doc.find("<!-- tutorial-end -->").expect("tutorial end marker");
    let mut steps = Vec::new();
    let mut in_block = false;
    for line in doc[start..end].lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        let line = line.trim();
        if !in_block || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (command, comment) = match line.split_once("   # ") {
            Some((c, note)) => (c.trim(), note),
            None => (line, ""),
        };
        let mut step = Step {
            command: command.to_string(),
            exit: 0,
            shows: None,
        };
        // `exit N`, `shows: TEXT`, or `exit N, shows: TEXT`.
        let mut rest = comment;
        if let Some(code) = rest.strip_prefix("exit ") {
            let (code, after) = code.split_once(", ").unwrap_or((code, ""));
            step.exit = code.parse().expect("exit code");
            rest = after;
        }
        if let Some(text) = rest.strip_prefix("shows: ") {
            step.shows = Some(text.to_string());
        } else {
            assert!(
                rest.is_empty(),
                "tutorial comment {comment:?}: use `exit N` and/or `shows: TEXT`"
            );
        }
        steps.push(step);
    }
    steps
}

#[test]
fn the_tutorial_runs_as_written() {
    let steps = tutorial_steps();
    assert!(steps.len() > 10, "the tutorial lost its commands");
    let work = tempfile::tempdir().expect("tmp");
    let bin = Path::new(env!("CARGO_BIN_EXE_wasmadm"))
        .parent()
        .expect("bin dir");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // Compiled dependencies are kept between runs (cargo's build-dir); the crate's own
    // `target/` (where the tutorial finds the component) is new each time.
    let build_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tutorial-build");
    let mut cwd = work.path().to_path_buf();
    for step in &steps {
        if let Some(dir) = step.command.strip_prefix("cd ") {
            cwd = cwd.join(dir);
            continue;
        }
        let out = Command::new("sh")
            .arg("-c")
            .arg(&step.command)
            .current_dir(&cwd)
            .env("PATH", &path)
            .env("WASMADM_CACHE_DIR", work.path().join("cache"))
            .env("CARGO_BUILD_BUILD_DIR", &build_dir)
            .output()
            .expect("run sh");
        let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(step.exit),
            "`{}` exited {:?}, the tutorial says {}:\n{shown}",
            step.command,
            out.status.code(),
            step.exit
        );
        if let Some(want) = &step.shows {
            assert!(
                shown.contains(want.as_str()),
                "`{}` did not show {want:?}:\n{shown}",
                step.command
            );
        }
    }
    // The last step ran the plugin from a pipeline, pinned by the digest `plugin build` printed.
    let pipeline = std::fs::read_to_string(cwd.join("pipeline.yaml")).expect("pipeline.yaml");
    assert!(pipeline.contains("digest: sha256:"), "{pipeline}");
}

#[test]
fn a_new_phase_plugin_builds_and_passes_its_cases() {
    let s = Scratch::new();
    let build_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tutorial-build");
    let out = s.run(&["plugin", "new", "vendor-conf", "--kind", "phase"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let crate_dir = s.path("vendor-conf");
    let cargo_test = Command::new("cargo")
        .arg("test")
        .current_dir(&crate_dir)
        .env("CARGO_BUILD_BUILD_DIR", &build_dir)
        .output()
        .expect("cargo test");
    assert!(cargo_test.status.success(), "{}", text(&cargo_test.stderr));
    let mut build = s.command(&["plugin", "build", "vendor-conf"]);
    let out = build
        .env("CARGO_BUILD_BUILD_DIR", &build_dir)
        .output()
        .expect("build");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The entry grants what the plugin asks for: writing its directory.
    let entry = text(&out.stdout);
    assert!(
        entry.contains("- name: vendor-conf\n") && entry.contains("write:\n      - /etc/vendor-conf\n"),
        "{entry}"
    );
    let out = s.run(&["plugin", "test", "vendor-conf/cases.yaml"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("3 passed, 0 failed\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn plugin_new_refuses_a_bad_name_or_an_existing_directory_and_leaves_nothing() {
    let s = Scratch::new();
    let out = s.run(&["plugin", "new", "Vendor_Checks"]);
    assert_refused(&out, &["use lower-case letters, digits and '-'"]);
    assert!(!s.path("Vendor_Checks").exists());

    let out = s.run(&["plugin", "new", "vendor-checks", "--dir", "node"]);
    assert_refused(&out, &["already exists: give another name or --dir"]);
    let left: Vec<_> = std::fs::read_dir(s.dir.path())
        .expect("read")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("wasmadm-plugin-new"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn plugin_build_of_a_directory_without_a_crate_says_what_to_give() {
    let s = Scratch::new();
    let out = s.run(&["plugin", "build", "node"]);
    assert_refused(
        &out,
        &["node has no Cargo.toml: give the plugin crate's directory"],
    );
}

#[test]
fn plugin_test_reports_a_bad_cases_file_with_its_line() {
    let s = Scratch::new();
    let cases = s.path("cases.yaml");
    std::fs::write(
        &cases,
        "component: x.wasm\ncases:\n  - name: one\n    expect: { exitcode: 2 }\n",
    )
    .expect("write");
    let out = s.run(&["plugin", "test", "cases.yaml"]);
    assert_refused(&out, &["cases.yaml:4:", "unknown field `exitcode`"]);
}

#[test]
fn the_testkit_gives_a_rust_test_structured_findings() {
    use wasmadm_plugin_test::{Harness, Severity};
    let s = Scratch::new();
    std::fs::write(s.path("node/proc/meminfo"), "MemTotal: 1000 kB\n").expect("write");
    let harness = Harness::new(s.component("preflight"))
        .binary(env!("CARGO_BIN_EXE_wasmadm"))
        .node(s.path("node"));
    let outcome = harness.run().expect("wasmadm ran");
    assert_eq!(outcome.exit_code, 2);
    assert_eq!(outcome.plugin.name, "preflight");
    let mem = outcome.finding("Mem").expect("Mem finding");
    assert_eq!(mem.severity, Severity::Error);
    assert_eq!(
        mem.message,
        "the system RAM (0 MB) is less than the minimum 1700 MB"
    );
    assert_eq!(outcome.errors().count(), 1, "{:?}", outcome.findings);

    let outcome = harness
        .clone()
        .ignore_preflight_errors(&["Mem"])
        .run()
        .expect("ran");
    assert_eq!((outcome.exit_code, outcome.errors().count()), (0, 0));

    // Withheld grants: the denial names what is missing.
    let outcome = harness
        .grants(serde_json::json!({"files": {"read": ["/etc"]}}))
        .run()
        .expect("ran");
    assert_eq!(outcome.exit_code, 1);
    assert!(
        outcome.error.as_deref().is_some_and(|e| e.contains("grants")),
        "{:?}",
        outcome.error
    );
}

#[test]
fn the_testkit_says_how_to_find_wasmadm() {
    let e = wasmadm_plugin_test::Harness::new("x.wasm")
        .binary("/nonexistent/wasmadm")
        .run()
        .expect_err("no binary");
    assert!(e.to_string().contains("set WASMADM to its path"), "{e}");
}

/// The recorded calls of a trace as `(interface, function, args)`.
fn recorded_calls(trace: &Path) -> Vec<(String, String, serde_json::Value)> {
    std::fs::read_to_string(trace)
        .expect("trace")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|v| v["kind"] == "call")
        .map(|v| {
            let s = |k: &str| v[k].as_str().expect(k).to_string();
            (s("interface"), s("function"), v["args"].clone())
        })
        .collect()
}

#[test]
fn a_recorded_preflight_failure_replays_without_the_node_and_a_change_is_caught_at_its_call() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    std::fs::write(s.path("node/proc/meminfo"), "MemTotal: 1000 kB\n").expect("write");
    let component = s.component("preflight");
    let trace = s.path("preflight.trace");
    let trace_arg = trace.display().to_string();
    let recorded = s.plugin_run(&component, &["-o", "json", "--record", &trace_arg]);
    assert_eq!(recorded.status.code(), Some(2), "{}", text(&recorded.stderr));
    let mode = std::fs::metadata(&trace).expect("trace").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "a trace holds the node's secrets");
    let calls = recorded_calls(&trace);
    assert!(
        calls.contains(&(
            "files".into(),
            "read".into(),
            serde_json::json!({"path": "/proc/meminfo"})
        )),
        "{calls:?}"
    );

    // No node any more: the replay is answered from the trace and ends as the recording did.
    std::fs::remove_dir_all(s.path("node")).expect("remove the node");
    let replayed = s.run(&["plugin", "replay", &component, &trace_arg, "-o", "json"]);
    assert_eq!(replayed.status.code(), Some(2), "{}", text(&replayed.stderr));
    let (recorded, replayed) = (json(&recorded), json(&replayed));
    for key in ["exitCode", "error", "findings", "outputs", "console"] {
        assert_eq!(recorded[key], replayed[key], "{key}");
    }
    assert!(checks(&replayed).contains(&("Mem".into(), "error".into())));

    // Other settings make the plugin look elsewhere: the replay stops at that call and says so.
    std::fs::write(s.path("settings.yaml"), "path: [/usr/bin]\n").expect("write");
    let first_stat = calls
        .iter()
        .position(|(i, f, a)| i == "files" && f == "stat" && a["path"] == "/usr/local/sbin/losetup")
        .expect("the recorded run looked for losetup")
        + 1;
    let out = s.run(&[
        "plugin",
        "replay",
        &component,
        &trace_arg,
        "--settings",
        "settings.yaml",
    ]);
    assert_refused(
        &out,
        &[&format!(
            "the replay of phase preflight diverged from the recording at call {first_stat}: files.stat: \
             argument `path`: expected \"/usr/local/sbin/losetup\", got \"/usr/bin/losetup\""
        )],
    );

    // Another plugin altogether diverges at once, and names the call it did not make.
    let other = s.component("etcd");
    let out = s.run(&["plugin", "replay", &other, &trace_arg]);
    assert_refused(&out, &["diverged from the recording at call 1:"]);
}

#[test]
fn every_phase_of_a_recorded_init_replays_to_its_recorded_end() {
    let s = Scratch::new();
    let trace = s.path("init.trace");
    let trace_arg = trace.display().to_string();
    let out = s.run(&["--root", &s.node(), "init", "--record", &trace_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
        .expect("trace")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    // Every capability of the contract was used, and so were the clocks and random.
    for interface in [
        "files",
        "exec",
        "kube",
        "health",
        "keys",
        "log",
        "wasi:random/random",
    ] {
        assert!(
            lines.iter().any(|l| l["interface"] == interface),
            "no {interface} call was recorded"
        );
    }
    std::fs::remove_dir_all(s.path("node")).expect("remove the node");
    let phases: Vec<&serde_json::Value> = lines.iter().filter(|l| l["kind"] == "phase").collect();
    assert!(phases.len() > 10, "{} phases", phases.len());
    for phase in phases {
        let name = phase["phase"].as_str().expect("phase");
        let builtin = phase["plugin"].as_str().expect("plugin");
        let component = s.component(builtin.strip_prefix("builtin:").expect("a built-in plugin"));
        let out = s.run(&["plugin", "replay", &component, &trace_arg, "--phase", name]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&format!("[replay] phase {name}: the plugin made the ")),
            "{name}: {}",
            text(&out.stderr)
        );
    }
    // Without --phase, a trace of several phases asks which.
    let out = s.run(&["plugin", "replay", &s.component("preflight"), &trace_arg]);
    assert_refused(&out, &["records several phases (preflight, certs,"]);
}

#[test]
fn plugin_run_has_no_cluster_unless_given_memory() {
    let s = Scratch::new();
    let (component, node) = (s.component("upload-config"), s.node());
    let run = |extra: &[&str]| {
        let mut args = vec!["--root", &node, "plugin", "run", &component];
        args.extend_from_slice(extra);
        s.run(&args)
    };
    for none in [&[][..], &["--cluster", "none"]] {
        assert_refused(
            &run(none),
            &["no cluster is configured for this run (see --cluster)"],
        );
    }
    let out = run(&["--cluster", "memory", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let objects = json(&out)["objects"].to_string();
    assert!(objects.contains("kubelet-config"), "{objects}");
    // Commands that need a cluster say so.
    let out = s.run(&["--root", &node, "--cluster", "none", "token", "list"]);
    assert_refused(
        &out,
        &["token commands need a cluster: give --cluster memory or kubeconfig"],
    );
}

#[test]
fn a_bad_settings_key_is_reported_at_its_line_of_the_pipeline_or_settings_file() {
    let s = Scratch::new();
    let pipeline = s.path("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: preflight\n    \
         component: builtin:preflight\n    settings:\n      path: [/usr/bin]\n      pathz: 1\n",
    )
    .expect("write");
    let pipeline_arg = pipeline.display().to_string();
    let out = s.run(&[
        "--root",
        &s.node(),
        "--pipeline",
        &pipeline_arg,
        "init",
        "phase",
        "preflight",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let want = format!(
        "invalid configuration: {pipeline_arg}:8:7: settings of phase \"preflight\": unknown field \
         `pathz`, expected `path`\n"
    );
    assert!(text(&out.stderr).ends_with(&want), "{}", text(&out.stderr));

    // And in a settings file of `plugin run`.
    std::fs::write(
        s.path("settings.yaml"),
        "# Where to look\npath: [/usr/bin]\npathz: 1\n",
    )
    .expect("write");
    let component = s.component("preflight");
    let out = s.plugin_run(&component, &["--settings", "settings.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let want = "invalid configuration: settings.yaml:3:1: settings of phase \"preflight\": unknown field \
                `pathz`, expected `path`\n";
    assert!(text(&out.stderr).ends_with(want), "{}", text(&out.stderr));
}
