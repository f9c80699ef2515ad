//! The `wasmadm` command line. Everything here is argument handling and printing; the work is in
//! the rest of the library. It lives in the library (the binary only calls [`main`]) so that the
//! integration tests can build the same command under another name and run it as users do.

use crate::caps::log::Console;
use crate::cluster::Cluster;
use crate::command::Command;
use crate::config::kubeadm::{self, ConfigError, Flags};
use crate::config::pipeline::{Pipeline, PipelineError};
use crate::invocation::{self, Backend, ClusterKind, Invocation};
use crate::runtime::trace::Trace;
use crate::runtime::{RunError, RunSpec, Runtime};
use anyhow::{Context as _, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod output;
mod plugin_cli;
mod token_cli;

/// kubeadm, with every phase a sandboxed WebAssembly plugin.
///
/// `wasmadm init` bootstraps a control-plane node, `wasmadm join` adds a node, `wasmadm reset`
/// undoes either. Each phase is a WebAssembly component listed in a pipeline file (the built-in
/// default, or `--pipeline`), run with only the file, command and Kubernetes API grants that file
/// gives it.
#[derive(Parser)]
#[command(name = "wasmadm", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args)]
struct Global {
    /// The node's root directory: every node path (/etc/kubernetes, /proc, ...) is resolved under
    /// it. Point it at a directory to run against a sandboxed node without root privileges.
    #[arg(long, global = true, default_value = "/", value_name = "DIR")]
    root: PathBuf,
    /// Whether `--root` was on the command line (`plugin run` refuses to default to `/`).
    #[arg(skip)]
    root_given: bool,
    /// The pipeline file (phases, components, grants). Default: the built-in pipeline
    /// (`wasmadm config print pipeline` prints it).
    #[arg(long, global = true, value_name = "FILE")]
    pipeline: Option<PathBuf>,
    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/wasmadm or ~/.cache/wasmadm].
    #[arg(long, global = true, value_name = "DIR", env = "WASMADM_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Which Kubernetes API phases talk to: `memory` (wasmadm's in-memory cluster, kept in
    /// <root>/var/lib/wasmadm/in-memory-cluster.json), `kubeconfig` (a real API server, see
    /// --kubeconfig), `auto`: `kubeconfig` when --root is `/`, else `memory`, or `none`: no cluster
    /// (Kubernetes API calls answer `unavailable`), what `plugin run` has under `auto`.
    #[arg(long, global = true, value_enum, default_value_t = ClusterKind::Auto)]
    cluster: ClusterKind,
    /// The kubeconfig for `--cluster kubeconfig` (a node path, resolved under --root).
    #[arg(
        long,
        global = true,
        default_value = "/etc/kubernetes/admin.conf",
        value_name = "FILE"
    )]
    kubeconfig: String,
    /// Log verbosity, as kubeadm's --v: 0 none (the console shows kubeadm's lines only), 1
    /// warnings, 2-4 info, 5-8 debug, 9+ trace; logs go to stderr. WASMADM_LOG (a tracing filter,
    /// e.g. `wasmadm=debug`) overrides it.
    #[arg(
        short = 'v',
        long = "v",
        global = true,
        default_value_t = 0,
        value_name = "LEVEL"
    )]
    verbosity: u8,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run this command in order to set up the Kubernetes control plane.
    Init(Box<InitCommand>),
    /// Run this on any machine you wish to join an existing cluster.
    Join(Box<JoinCommand>),
    /// Performs a best effort revert of changes made to this host by 'wasmadm init' or 'wasmadm join'.
    Reset(Box<ResetCommand>),
    /// List the phases of a command, with their sub-phases and plugins.
    Phase {
        #[command(subcommand)]
        command: PhaseCmd,
    },
    /// Inspect plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCmd,
    },
    /// Print or check configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCmd,
    },
    /// Manage bootstrap tokens.
    ///
    /// Bootstrap tokens establish bidirectional trust between a node that joins the cluster and
    /// the control plane: a token with the "signing" usage lets the node check the cluster-info
    /// it discovers, and one with the "authentication" usage lets it authenticate to the API
    /// server for the TLS bootstrap.
    ///
    /// A bootstrap token is a Secret of type "bootstrap.kubernetes.io/token" named
    /// "bootstrap-token-<token id>" in the kube-system namespace. A token has the form
    /// "[a-z0-9]{6}.[a-z0-9]{16}": the first part is the public token ID, the second the token
    /// secret, which must be kept private.
    ///
    /// The commands use the cluster of --cluster: the in-memory cluster of --root, or the API
    /// server of --kubeconfig.
    Token {
        #[command(subcommand)]
        command: token_cli::TokenCmd,
    },
    /// Commands related to handling Kubernetes certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCmd,
    },
}

#[derive(Subcommand)]
enum CertsCmd {
    /// Generate certificate keys: a new random 32-byte AES key, hex-encoded, for
    /// `init --upload-certs --certificate-key` and `join --control-plane --certificate-key`.
    CertificateKey,
}

#[derive(Args, Clone)]
struct RunFlags {
    /// Path to a kubeadm configuration file (kubeadm.k8s.io/v1beta4).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    dry_run: bool,
    /// A list of checks whose errors will be shown as warnings. Example: 'IsPrivilegedUser,Swap'.
    /// Value 'all' ignores errors from all checks.
    #[arg(long, value_delimiter = ',', value_name = "CHECKS")]
    ignore_preflight_errors: Vec<String>,
    /// List of phases to be skipped (`phase` or `phase/sub-phase`).
    #[arg(long, value_delimiter = ',', value_name = "PHASES")]
    skip_phases: Vec<String>,
    /// Specify the node name.
    #[arg(long)]
    node_name: Option<String>,
    /// Path to the CRI socket to connect. [default: unix:///var/run/containerd/containerd.sock]
    #[arg(long, value_name = "SOCKET")]
    cri_socket: Option<String>,
    /// Write every host call of every phase to FILE, for `plugin replay` (it holds the node's
    /// secrets: mode 0600).
    #[arg(long, value_name = "FILE", long_help = RECORD_HELP)]
    record: Option<PathBuf>,
}

/// `--record FILE`, for every command that runs phases.
const RECORD_HELP: &str = "Write every host call of every phase to FILE as JSON lines: the phase, \
    the interface and function, the arguments and the result, and the plugin's clock, random and \
    environment reads. `wasmadm plugin replay PLUGIN.wasm FILE` re-runs a plugin against it with no \
    node and no cluster.\n\nThe trace contains the node's secrets (the files the plugins read, \
    /etc/kubernetes/pki included, and the keys the host generated): it is written with mode 0600; \
    share it like the node's PKI.";

#[derive(Args)]
struct NodeCommand {
    #[command(flatten)]
    flags: RunFlags,
    #[command(subcommand)]
    phase: Option<SinglePhase>,
}

#[derive(Subcommand)]
enum SinglePhase {
    /// Run one phase (and one sub-phase, or `all`) of the pipeline.
    Phase {
        /// The phase's name, e.g. `preflight` or `certs`.
        name: String,
        /// A sub-phase, e.g. `apiserver`, or `all`.
        sub: Option<String>,
        /// `join phase` only: the API server to discover the cluster at (host:port), as after
        /// `wasmadm join`.
        #[arg(value_name = "API_SERVER_ENDPOINT")]
        endpoint: Option<String>,
        #[command(flatten)]
        flags: RunFlags,
    },
}

#[derive(Args)]
struct InitCommand {
    #[command(flatten)]
    init: InitArgs,
    #[command(flatten)]
    node: NodeCommand,
}

/// `init` flags that set configuration fields; they cannot be mixed with --config.
#[derive(Args)]
struct InitArgs {
    /// The IP address the API Server will advertise it's listening on.
    #[arg(long, global = true, value_name = "IP")]
    apiserver_advertise_address: Option<String>,
    /// Port for the API Server to bind to. [default: 6443]
    #[arg(long, global = true, value_name = "PORT")]
    apiserver_bind_port: Option<u16>,
    /// Optional extra Subject Alternative Names (SANs) to use for the API Server serving certificate.
    #[arg(long, global = true, value_delimiter = ',', value_name = "SANS")]
    apiserver_cert_extra_sans: Vec<String>,
    /// The path where to save and store the certificates. [default: /etc/kubernetes/pki]
    #[arg(long, global = true, value_name = "DIR")]
    cert_dir: Option<String>,
    /// Specify a stable IP address or DNS name for the control plane.
    #[arg(long, global = true, value_name = "HOST[:PORT]")]
    control_plane_endpoint: Option<String>,
    /// Choose a specific Kubernetes version for the control plane. [default: v1.36.2, no network needed]
    #[arg(long, global = true, value_name = "VERSION")]
    kubernetes_version: Option<String>,
    /// Specify range of IP addresses for the pod network.
    #[arg(long, global = true, value_name = "CIDR")]
    pod_network_cidr: Option<String>,
    /// Use alternative range of IP address for service VIPs. [default: 10.96.0.0/12]
    #[arg(long, global = true, value_name = "CIDR")]
    service_cidr: Option<String>,
    /// Use alternative domain for services, e.g. "myorg.internal". [default: cluster.local]
    #[arg(long, global = true, value_name = "DOMAIN")]
    service_dns_domain: Option<String>,
    /// Choose a container registry to pull control plane images from. [default: registry.k8s.io]
    #[arg(long, global = true, value_name = "REGISTRY")]
    image_repository: Option<String>,
    /// Upload control-plane certificates to the kubeadm-certs Secret.
    #[arg(long, global = true)]
    upload_certs: bool,
    /// Key used to encrypt the control-plane certificates in the kubeadm-certs Secret. The
    /// certificate key is a hex encoded string that is an AES key of size 32 bytes.
    #[arg(long, global = true, value_name = "KEY")]
    certificate_key: Option<String>,
    /// Don't print the key used to encrypt the control-plane certificates.
    #[arg(long, global = true)]
    skip_certificate_key_print: bool,
}

impl From<InitArgs> for kubeadm::InitFlags {
    fn from(a: InitArgs) -> Self {
        Self {
            apiserver_advertise_address: a.apiserver_advertise_address,
            apiserver_bind_port: a.apiserver_bind_port,
            apiserver_cert_extra_sans: a.apiserver_cert_extra_sans,
            cert_dir: a.cert_dir,
            control_plane_endpoint: a.control_plane_endpoint,
            kubernetes_version: a.kubernetes_version,
            pod_network_cidr: a.pod_network_cidr,
            service_cidr: a.service_cidr,
            service_dns_domain: a.service_dns_domain,
            image_repository: a.image_repository,
            upload_certs: a.upload_certs,
            certificate_key: a.certificate_key,
            skip_certificate_key_print: a.skip_certificate_key_print,
        }
    }
}

#[derive(Args)]
struct JoinCommand {
    /// Create a new control plane instance on this node.
    #[arg(long, global = true)]
    control_plane: bool,
    #[command(flatten)]
    join: JoinArgs,
    #[command(flatten)]
    node: NodeCommand,
}

/// `join` arguments that set configuration fields; they cannot be mixed with --config.
#[derive(Args)]
struct JoinArgs {
    /// The API server to discover the cluster at (host:port), e.g. 10.0.0.1:6443.
    #[arg(value_name = "API_SERVER_ENDPOINT")]
    api_server_endpoint: Option<String>,
    /// Use this token for both --discovery-token and --tls-bootstrap-token when those are not given.
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
    /// For token-based discovery, the token used to validate cluster information fetched from the
    /// API server.
    #[arg(long, global = true, value_name = "TOKEN")]
    discovery_token: Option<String>,
    /// For token-based discovery, validate that the root CA public key matches this hash
    /// (format: "sha256:<hex>", as `wasmadm init` prints it). Repeat it to allow more keys.
    #[arg(long, global = true, value_delimiter = ',', value_name = "HASH")]
    discovery_token_ca_cert_hash: Vec<String>,
    /// For token-based discovery, allow joining without --discovery-token-ca-cert-hash pinning
    /// (other nodes could then impersonate the control plane).
    #[arg(long, global = true)]
    discovery_token_unsafe_skip_ca_verification: bool,
    /// For file-based discovery, a file or URL from which to load cluster information. A URL must
    /// be https://, its server verified by the node's trust store ($SSL_CERT_FILE or
    /// /etc/ssl/certs/ca-certificates.crt and the like, under --root).
    #[arg(long, global = true, value_name = "FILE|URL")]
    discovery_file: Option<String>,
    /// The token used to temporarily authenticate with the control plane while joining the node.
    #[arg(long, global = true, value_name = "TOKEN")]
    tls_bootstrap_token: Option<String>,
    /// Use this key to decrypt the certificate secrets uploaded by init (hex, 32 bytes).
    #[arg(long, global = true, value_name = "KEY")]
    certificate_key: Option<String>,
    /// If the node hosts a new control plane instance, the IP address its API server advertises.
    #[arg(long, global = true, value_name = "IP")]
    apiserver_advertise_address: Option<String>,
    /// If the node hosts a new control plane instance, the port its API server binds. [default: 6443]
    #[arg(long, global = true, value_name = "PORT")]
    apiserver_bind_port: Option<u16>,
}

impl From<JoinArgs> for kubeadm::JoinFlags {
    fn from(a: JoinArgs) -> Self {
        Self {
            api_server_endpoint: a.api_server_endpoint,
            token: a.token,
            discovery_token: a.discovery_token,
            discovery_token_ca_cert_hash: a.discovery_token_ca_cert_hash,
            discovery_token_unsafe_skip_ca_verification: a.discovery_token_unsafe_skip_ca_verification,
            discovery_file: a.discovery_file,
            tls_bootstrap_token: a.tls_bootstrap_token,
            certificate_key: a.certificate_key,
            apiserver_advertise_address: a.apiserver_advertise_address,
            apiserver_bind_port: a.apiserver_bind_port,
        }
    }
}

#[derive(Args)]
struct ResetCommand {
    /// Reset the node without prompting for confirmation.
    #[arg(short, long)]
    force: bool,
    #[command(flatten)]
    node: NodeCommand,
}

#[derive(Subcommand)]
enum PhaseCmd {
    /// List the phases of a command.
    List {
        #[arg(long, value_enum, default_value_t = Command::Init)]
        command: Command,
    },
}

#[derive(Subcommand)]
enum PluginCmd {
    /// Print what a plugin declares: name, sub-phases, settings and the capabilities it asks for
    /// (as a pipeline `grants:` block).
    Inspect {
        /// A `.wasm` component, or `builtin:<name>`.
        component: String,
    },
    #[command(flatten)]
    Author(plugin_cli::AuthorCmd),
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print a default configuration.
    Print {
        #[arg(value_enum)]
        what: PrintWhat,
    },
    /// Check a kubeadm configuration file (kubeadm.k8s.io/v1beta4): fields, values, defaults.
    Validate {
        /// The file to check.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum PrintWhat {
    /// The built-in pipeline (phases, components, grants, limits).
    Pipeline,
    /// An InitConfiguration and ClusterConfiguration with kubeadm's defaults and placeholders.
    InitDefaults,
    /// A JoinConfiguration with kubeadm's defaults and placeholders.
    JoinDefaults,
}

/// True when `arg` was typed on the command line (a global flag may follow any subcommand).
fn given_on_command_line(matches: &ArgMatches, arg: &str) -> bool {
    matches.value_source(arg) == Some(ValueSource::CommandLine)
        || matches
            .subcommand()
            .is_some_and(|(_, sub)| given_on_command_line(sub, arg))
}

/// Parses the command line, runs it, prints an error the way kubeadm does, and returns the exit
/// code.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.global.root_given = given_on_command_line(&matches, "root");
    init_tracing(cli.global.verbosity);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output left (`| head`): nothing more to say, and nothing failed.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            eprintln!("error: {}", output::error_text(&e));
            if code == 1 {
                eprintln!("To see more, run again with --v=5 or higher");
            }
            ExitCode::from(code)
        }
    }
}

/// Diagnostics go through `tracing` to stderr, and only when asked for (`-v`, or `WASMADM_LOG`):
/// the console belongs to kubeadm's own lines. No colour codes unless stderr is a terminal.
fn init_tracing(v: u8) {
    let level = match v {
        0 => "off",
        1 => "warn",
        2..=4 => "info",
        5..=8 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASMADM_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},cranelift=warn,wasmtime=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// kubeadm's exit codes: 2 preflight, 3 invalid configuration, 1 anything else.
fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(r) = e.downcast_ref::<RunError>() {
        return r.exit_code() as u8;
    }
    if e.downcast_ref::<ConfigError>().is_some() || e.downcast_ref::<PipelineError>().is_some() {
        return 3;
    }
    1
}

fn load_pipeline(global: &Global) -> Result<Pipeline> {
    Ok(match &global.pipeline {
        Some(path) => Pipeline::load(path)?,
        None => Pipeline::builtin_default()?,
    })
}

fn runtime(global: &Global) -> Result<Runtime> {
    let cache = global.cache_dir.clone().or_else(Runtime::default_cache_dir);
    Ok(Runtime::new(cache)?)
}

/// The cluster of a run (see [`Backend`]); none for `--cluster none`.
fn cluster(global: &Global, dry_run: bool, kubelet_node: Option<&str>) -> Result<Option<Arc<dyn Cluster>>> {
    if global.cluster == ClusterKind::None {
        return Ok(None);
    }
    let backend = Backend::choose(global.cluster, &global.root, &global.kubeconfig, dry_run);
    Ok(Some(backend.connect(kubelet_node)?))
}

fn run(cli: Cli) -> Result<()> {
    let global = &cli.global;
    match cli.command {
        Cmd::Init(init) => {
            let InitCommand { init, node } = *init;
            run_pipeline(
                global,
                Command::Init,
                node,
                Extra {
                    init: init.into(),
                    ..Extra::default()
                },
            )
        }
        Cmd::Join(join) => {
            let JoinCommand {
                control_plane,
                join,
                node,
            } = *join;
            run_pipeline(
                global,
                Command::Join,
                node,
                Extra {
                    control_plane,
                    join: join.into(),
                    ..Extra::default()
                },
            )
        }
        Cmd::Reset(reset) => {
            if !reset.force && !reset.node.flags.dry_run {
                eprintln!("[reset] Running without --force: pass --force (or --dry-run) to reset this node");
                anyhow::bail!("reset needs --force to proceed, as there is no prompt in non-interactive use");
            }
            run_pipeline(global, Command::Reset, reset.node, Extra::default())
        }
        Cmd::Phase {
            command: PhaseCmd::List { command },
        } => phase_list(global, command),
        Cmd::Plugin {
            command: PluginCmd::Inspect { component },
        } => plugin_inspect(global, &component),
        Cmd::Plugin {
            command: PluginCmd::Author(command),
        } => plugin_cli::run(global, command),
        Cmd::Config {
            command: ConfigCmd::Print { what },
        } => {
            output::print(&match what {
                PrintWhat::Pipeline => Pipeline::DEFAULT_YAML.to_string(),
                PrintWhat::InitDefaults => kubeadm::init_defaults_yaml()?,
                PrintWhat::JoinDefaults => kubeadm::join_defaults_yaml()?,
            })?;
            Ok(())
        }
        Cmd::Config {
            command: ConfigCmd::Validate { config },
        } => validate(&config),
        Cmd::Token { command } => token_cli::run(
            command,
            || {
                cluster(global, false, None)?
                    .context("token commands need a cluster: give --cluster memory or kubeconfig, not none")
            },
            || {
                let path = global.root.join(global.kubeconfig.trim_start_matches('/'));
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read the kubeconfig {}", path.display()))
            },
        ),
        Cmd::Certs {
            command: CertsCmd::CertificateKey,
        } => {
            println!("{}", kubeadm_copycerts::CertificateKey::generate()?.to_hex());
            Ok(())
        }
    }
}

/// Checks a file as the command it is for (a JoinConfiguration as `join`, else `init`).
fn validate(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = kubeadm::parse(&text, path)?;
    let command = if parsed.join.is_some() {
        Command::Join
    } else {
        Command::Init
    };
    kubeadm::resolve(
        Some(path),
        command,
        &Flags::default(),
        &crate::facts::hostname(Path::new("/")),
    )?;
    println!("ok");
    Ok(())
}

/// The flags of one command that the others do not have.
#[derive(Default)]
struct Extra {
    control_plane: bool,
    init: kubeadm::InitFlags,
    join: kubeadm::JoinFlags,
}

fn run_pipeline(global: &Global, command: Command, node: NodeCommand, extra: Extra) -> Result<()> {
    let Extra {
        control_plane,
        init,
        join,
    } = extra;
    let (flags, only, endpoint) = match node.phase {
        Some(SinglePhase::Phase {
            name,
            sub,
            endpoint,
            flags,
        }) => (flags, Some((name, sub)), endpoint),
        None => (node.flags, None, None),
    };
    let mut join = join;
    if let Some(endpoint) = endpoint {
        if command != Command::Join {
            anyhow::bail!(
                "{command} phase takes no API server endpoint ({endpoint:?}): only `join phase` does"
            );
        }
        join.api_server_endpoint.get_or_insert(endpoint);
    }
    let pipeline = load_pipeline(global)?;
    let run_flags = Flags {
        node_name: flags.node_name.clone(),
        ignore_preflight_errors: flags.ignore_preflight_errors.clone(),
        skip_phases: flags.skip_phases.clone(),
        control_plane,
        cri_socket: flags.cri_socket.clone(),
        init,
        join,
    };
    let mut config = kubeadm::resolve(
        flags.config.as_deref(),
        command,
        &run_flags,
        &crate::facts::hostname(&global.root),
    )?;
    kubeadm::read_discovery_file(&mut config, &global.root)?;
    // An empty advertiseAddress is the default route's, as in kubeadm: a kernel fact, taken from
    // the machine under --root too (kubeadm's --rootfs moves files, not the network).
    if command != Command::Reset
        && let Some(ip) = kubeadm::detect_advertise_address(&mut config)?
    {
        tracing::info!(%ip, "advertise address from the default route");
    }
    let runtime = runtime(global)?;
    let console = Console::stdio();
    // kubeadm prints this for a whole `init` (not for `init phase`), skipped phases or not.
    if command == Command::Init
        && only.is_none()
        && let Some(cluster) = &config.cluster
    {
        console.out(&format!(
            "[init] Using Kubernetes version: {}",
            cluster.kubernetes_version
        ));
    }
    let cluster = cluster(global, flags.dry_run, invocation::kubelet_node(command, &config))?;
    let runner = invocation::runner(&runtime, &pipeline, command, &config);
    let spec = Invocation {
        command,
        root: &global.root,
        flags: &run_flags,
        dry_run: flags.dry_run,
        only,
    }
    .run_spec(config, cluster, console);
    let spec = RunSpec {
        trace: flags.record.as_deref().map(Trace::record).transpose()?,
        ..spec
    };
    invocation::run(&runner, &pipeline, &spec)?;
    Ok(())
}

fn root_dir(global: &Global) -> Result<Arc<cap_std::fs::Dir>> {
    let dir = cap_std::fs::Dir::open_ambient_dir(&global.root, cap_std::ambient_authority())
        .with_context(|| format!("cannot open --root {}", global.root.display()))?;
    Ok(Arc::new(dir))
}

fn phase_list(global: &Global, command: Command) -> Result<()> {
    let pipeline = load_pipeline(global)?;
    let runtime = runtime(global)?;
    let root = root_dir(global)?;
    output::print(&format!(
        "The {command} pipeline runs these phases, in order:\n\n"
    ))?;
    for spec in pipeline.phases(command) {
        let planned = invocation::describe(&runtime, root.clone(), spec)?;
        let mut flags = Vec::new();
        if !spec.enabled {
            flags.push("disabled".to_string());
        }
        if let Some(role) = spec.role {
            flags.push(format!("{role:?} only"));
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        let mut text = format!("{:<24} {}{flags}\n", spec.name, planned.info.summary);
        for sub in &planned.info.sub_phases {
            text.push_str(&format!("  /{:<21} {}\n", sub.name, sub.summary));
        }
        text.push_str(&format!(
            "{:<24} plugin {} {} (sha256:{})\n",
            "", spec.component, planned.info.version, planned.plugin.digest
        ));
        output::print(&text)?;
    }
    Ok(())
}

fn plugin_inspect(global: &Global, component: &str) -> Result<()> {
    use crate::config::pipeline::{ComponentRef, PhaseSpec};
    let runtime = runtime(global)?;
    let root = root_dir(global)?;
    let component_ref = ComponentRef::try_from(component.to_string()).map_err(anyhow::Error::msg)?;
    let spec: PhaseSpec = serde_yaml::from_str(&format!("name: inspect\ncomponent: {component:?}\n"))?;
    let spec = PhaseSpec {
        component: component_ref,
        ..spec
    };
    let planned = invocation::describe(&runtime, root, &spec)?;
    output::print(&format!(
        "{}
",
        crate::grants::describe_plugin(&planned.info, &planned.plugin.digest)
    ))?;
    Ok(())
}
