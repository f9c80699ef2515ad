//! `wasmadm plugin new|build|run`: the commands a plugin author uses, from an empty directory to
//! a component run alone against a node directory.

use super::{Global, output, runtime};
use crate::author::replay::{self, Replay};
use crate::author::single::{self, GrantChoice, SingleRun};
use crate::author::{build, cases, scaffold};
use crate::caps::log::{Console, Recorded, Stream};
use crate::cluster::Cluster;
use crate::cluster::memory::MemoryCluster;
use crate::command::{Command, Role};
use crate::config::kubeadm::{self, Flags};
use crate::config::pipeline::Grants;
use crate::config::settings_error::Source;
use crate::invocation::ClusterKind;
use crate::runtime::RunError;
use crate::runtime::trace::{Recording, Trace};
use anyhow::{Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub(super) enum AuthorCmd {
    /// Create a plugin crate that builds, with a fixture node directory and tests that pass as
    /// created (`cargo test`). The SDK comes vendored under vendor/wasmadm, matching this
    /// wasmadm's contract: the crate needs neither this repository nor a network.
    New {
        /// The plugin's name: the crate's and the phase's (lower-case letters, digits, '-').
        name: String,
        /// `check`: reads a node file and reports findings; `phase`: writes a node file.
        #[arg(long, value_enum, default_value_t = KindArg::Check)]
        kind: KindArg,
        /// Where to create it [default: ./NAME]; must not exist.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Build a plugin crate's component (`cargo rustc --crate-type cdylib --target
    /// wasm32-wasip2 --release`), then print its path, digest and a pipeline entry to paste.
    Build {
        /// The crate's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run one plugin component alone against a node directory: no pipeline file, no digest to
    /// pin, the grants it asks for. Prints its console lines, findings and (with --dry-run) the
    /// plan, and exits as kubeadm would (2: a check failed, 3: invalid configuration or settings).
    ///
    /// --cluster: `none` (the default) gives the plugin no cluster (kube calls answer
    /// `unavailable`); `memory` a fresh in-memory cluster that is not saved; `kubeconfig` the API
    /// server of --kubeconfig.
    Run(RunArgs),
    /// Re-run a plugin against a trace written by `--record FILE` (of `plugin run`, `init`,
    /// `join`, `reset` or `init phase NAME`), with no node and no cluster: each host call is
    /// answered from the trace, in order. The first call whose function or arguments differ from
    /// the recorded one stops the plugin and is reported (call number, expected and actual), exit
    /// 1; a replay that matches to the end prints the findings and exits as the recording did.
    Replay(ReplayArgs),
    /// Run a plugin's table of cases (a YAML file: component, node directory, and per case
    /// files, settings, grants, configuration and API objects with the expected exit code,
    /// findings, error, files and objects). One line per case, what differed under a failed one;
    /// exits 1 when a case failed.
    Test {
        /// The cases file.
        cases: PathBuf,
    },
}

#[derive(Args)]
pub(super) struct RunArgs {
    /// The component (`target/wasm32-wasip2/release/<crate>.wasm`).
    component: PathBuf,
    /// The plugin's settings: a YAML file holding what a pipeline's `settings:` would.
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
    /// `requested` (what the plugin's describe() asks for), or a YAML file with a pipeline
    /// `grants:` block (as `plugin inspect` prints it), to run with what an operator would give.
    #[arg(long, default_value = "requested", value_name = "requested|FILE")]
    grants: String,
    /// A kubeadm configuration file (kubeadm.k8s.io/v1beta4); kubeadm's defaults otherwise.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Checks whose errors are shown as warnings (`all` for every check).
    #[arg(long, value_delimiter = ',', value_name = "CHECKS")]
    ignore_preflight_errors: Vec<String>,
    /// The command the plugin runs for (its context's `command`).
    #[arg(long, value_enum, default_value_t = Command::Init)]
    command: Command,
    /// Record writes, mutating commands and API mutations instead of performing them, and list
    /// them (JSON: `effects`).
    #[arg(long)]
    dry_run: bool,
    /// `text`: the console as kubeadm prints it and a summary; `json`: one object with the
    /// plugin, exit code, error, findings, effects, outputs, in-memory objects and console lines.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write every host call of every phase to FILE, for `plugin replay` (it holds the node's
    /// secrets: mode 0600).
    #[arg(long, value_name = "FILE", long_help = super::RECORD_HELP)]
    record: Option<PathBuf>,
}

#[derive(Args)]
pub(super) struct ReplayArgs {
    /// The component to replay (the recorded one, or a changed build of it).
    component: PathBuf,
    /// The trace (`--record FILE`).
    trace: PathBuf,
    /// The recorded phase to replay; needed when the trace has several.
    #[arg(long, value_name = "NAME")]
    phase: Option<String>,
    /// Settings to try instead of the recorded ones (a YAML file, as for `plugin run`).
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
    /// `text` or `json`, as for `plugin run`.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum KindArg {
    Check,
    Phase,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub(super) fn run(global: &Global, command: AuthorCmd) -> Result<()> {
    match command {
        AuthorCmd::Run(args) => plugin_run(global, args),
        AuthorCmd::Replay(args) => plugin_replay(global, args),
        AuthorCmd::New { name, kind, dir } => plugin_new(&name, kind, dir),
        AuthorCmd::Build { dir } => plugin_build(global, &dir),
        AuthorCmd::Test { cases: file } => plugin_test(global, &file),
    }
}

fn plugin_test(global: &Global, path: &Path) -> Result<()> {
    let file = cases::load(path)?;
    let results = cases::run_all(&runtime(global)?, &file);
    let mut text = String::new();
    for r in &results {
        text.push_str(&format!(
            "{} {}\n",
            if r.failures.is_empty() { "ok  " } else { "FAIL" },
            r.name
        ));
        for f in &r.failures {
            text.push_str(&format!("  {f}\n"));
        }
    }
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    text.push_str(&format!("{} passed, {failed} failed\n", results.len() - failed));
    output::print(&text)?;
    if failed > 0 {
        anyhow::bail!("{failed} of {} cases in {} failed", results.len(), path.display());
    }
    Ok(())
}

fn plugin_new(name: &str, kind: KindArg, dir: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let kind = match kind {
        KindArg::Check => scaffold::Kind::Check,
        KindArg::Phase => scaffold::Kind::Phase,
    };
    scaffold::create(&dir, name, kind)?;
    output::print(&format!(
        "Created plugin {name} in {dir}. Next:\n  cd {dir}\n  cargo test\n  wasmadm plugin build\n  \
         wasmadm --root fixtures/node plugin run target/wasm32-wasip2/release/{lib}.wasm\n",
        dir = dir.display(),
        lib = name.replace('-', "_"),
    ))?;
    Ok(())
}

fn plugin_build(global: &Global, dir: &Path) -> Result<()> {
    let wasm = build::build(dir)?;
    let wasm = std::path::absolute(&wasm).unwrap_or(wasm);
    let planned = single::describe(&runtime(global)?, &global.root, &wasm)?;
    let digest = &planned.plugin.digest;
    let entry = build::pipeline_entry(&planned.info, &wasm, digest).map_err(anyhow::Error::msg)?;
    output::print(&format!(
        "# Component: {}\n# Digest: sha256:{digest}\n# A pipeline entry (under init:, join: or \
         reset:), granting what the plugin asks for:\n{entry}",
        wasm.display(),
    ))?;
    Ok(())
}

/// A settings file (YAML) as JSON, with the file and line in errors, and its text for the
/// positions of the plugin's errors.
fn read_settings(path: &Path) -> Result<(serde_json::Value, Source)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the settings file {}", path.display()))?;
    let settings = serde_yaml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} (the settings file)", crate::config::yaml_error(path, &e, 0)))?;
    let source = Source {
        path: path.to_path_buf(),
        text: text.into(),
        settings_only: true,
    };
    Ok((settings, source))
}

/// A grants file: a `grants:` block, or the block's contents.
fn read_grants(path: &Path) -> Result<Grants> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Block {
        grants: Grants,
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the grants file {}", path.display()))?;
    let wrapped = text.lines().any(|l| l.starts_with("grants:"));
    let parsed = if wrapped {
        serde_yaml::from_str::<Block>(&text).map(|b| b.grants)
    } else {
        serde_yaml::from_str::<Grants>(&text)
    };
    parsed.map_err(|e| {
        anyhow::anyhow!(
            "{} (a grants file holds a pipeline `grants:` block, as `wasmadm plugin inspect` prints it)",
            crate::config::yaml_error(path, &e, 0)
        )
    })
}

fn plugin_run(global: &Global, args: RunArgs) -> Result<()> {
    // `--root` defaults to `/` for init and join, which run on the node; a plugin under test
    // with the grants it asks for must not touch this machine by default.
    if !global.root_given {
        anyhow::bail!(
            "plugin run needs --root DIR: the node directory the plugin sees as / (a crate made by \
             `wasmadm plugin new` has fixtures/node); give `--root /` to run it against this machine"
        );
    }
    let command = args.command;
    if !args.component.is_file() {
        anyhow::bail!(
            "component {} does not exist: build the plugin first (`wasmadm plugin build`) and give \
             the .wasm file it prints",
            args.component.display()
        );
    }
    let (settings, settings_file) = match &args.settings {
        Some(path) => {
            let (settings, file) = read_settings(path)?;
            (settings, Some(file))
        }
        None => (serde_json::Value::Null, None),
    };
    let grants = match args.grants.as_str() {
        "requested" => GrantChoice::Requested,
        file => GrantChoice::Given(read_grants(Path::new(file))?),
    };
    let mut config = kubeadm::resolve(
        args.config.as_deref(),
        command,
        &Flags {
            ignore_preflight_errors: args.ignore_preflight_errors.clone(),
            ..Flags::default()
        },
        &crate::facts::hostname(&global.root),
    )?;
    if command != Command::Reset {
        kubeadm::detect_advertise_address(&mut config)?;
    }
    let (memory, cluster): (Option<Arc<MemoryCluster>>, Option<Arc<dyn Cluster>>) = match global.cluster {
        ClusterKind::Auto | ClusterKind::None => (None, None),
        ClusterKind::Memory => {
            let memory = Arc::new(MemoryCluster::new());
            (Some(memory.clone()), Some(memory))
        }
        ClusterKind::Kubeconfig => (None, super::cluster(global, args.dry_run, None)?),
    };
    let (console, recorded) = console(args.format);
    let trace = args.record.as_deref().map(Trace::record).transpose()?;
    let runtime = runtime(global)?;
    let outcome = single::run(
        &runtime,
        SingleRun {
            component: args.component.clone(),
            root: global.root.clone(),
            command,
            role: match command {
                Command::Join => Role::Worker,
                _ => Role::ControlPlane,
            },
            config,
            settings,
            settings_file,
            grants,
            dry_run: args.dry_run,
            cluster,
            console,
            trace,
        },
    )?;
    print_outcome(&outcome, recorded, memory)?;
    match outcome.error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn plugin_replay(global: &Global, args: ReplayArgs) -> Result<()> {
    if !args.component.is_file() {
        anyhow::bail!(
            "component {} does not exist: give the .wasm file to replay (`wasmadm plugin build` prints it)",
            args.component.display()
        );
    }
    let settings = args.settings.as_deref().map(read_settings).transpose()?;
    let (console, recorded) = console(args.format);
    let replayed = replay::replay(
        &runtime(global)?,
        Replay {
            component: args.component,
            recording: Arc::new(Recording::load(&args.trace)?),
            phase: args.phase,
            settings,
            console,
        },
    )?;
    let outcome = replayed.outcome;
    if recorded.is_none() && !matches!(outcome.error, Some(RunError::Trace(_))) {
        eprintln!(
            "[replay] phase {}: the plugin made the {} host calls of the recording {}, in order",
            replayed.phase,
            replayed.recorded_calls,
            args.trace.display()
        );
    }
    print_outcome(&outcome, recorded, None)?;
    match outcome.error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The console of a run: the terminal, or kept for the JSON report.
fn console(format: Format) -> (Console, Option<Recorded>) {
    match format {
        Format::Text => (Console::stdio(), None),
        Format::Json => {
            let (console, lines) = Console::buffer();
            (console, Some(lines))
        }
    }
}

/// A run's summary line (text), or everything as one JSON object with the console's lines.
fn print_outcome(
    outcome: &single::Outcome,
    recorded: Option<Recorded>,
    memory: Option<Arc<MemoryCluster>>,
) -> Result<()> {
    match recorded {
        None => {
            let count = |s| outcome.findings().filter(|f| f.severity == s).count();
            use crate::bindings::types::Severity;
            eprintln!(
                "[plugin] {} {} (sha256:{}): {} errors, {} warnings, {} info findings",
                outcome.plugin.name,
                outcome.plugin.version,
                outcome.plugin.digest,
                count(Severity::Error),
                count(Severity::Warning),
                count(Severity::Info),
            );
        }
        Some(lines) => {
            let mut json = outcome.to_json(memory.map(|m| m.objects()));
            let lines = lines.lock().unwrap_or_else(|p| p.into_inner());
            json["console"] = lines
                .iter()
                .map(|(stream, line)| {
                    serde_json::json!({
                        "stream": if *stream == Stream::Out { "stdout" } else { "stderr" },
                        "line": line,
                    })
                })
                .collect();
            output::print(&format!("{}\n", serde_json::to_string_pretty(&json)?))?;
        }
    }
    Ok(())
}
