//! The checks, in kubeadm's order, with kubeadm's names and messages (v1.36).

use crate::netutil;
use crate::{KUBEADM_VERSION, Settings};
use std::net::IpAddr;
use wasmadm_plugin_sdk::exec::{self, ExecError};
use wasmadm_plugin_sdk::files::ErrorCode;
use wasmadm_plugin_sdk::fs;
use wasmadm_plugin_sdk::types::PhaseError;
use wasmadm_plugin_sdk::{Context, ErrorText, Findings, Result, print};

const MANIFESTS: &str = "/etc/kubernetes/manifests";
const MIN_CPUS: usize = 2;
const MIN_MEMORY_MB: u64 = 1700;
const KUBELET_PORT: u16 = 10250;
const SCHEDULER_PORT: u16 = 10259;
const CONTROLLER_MANAGER_PORT: u16 = 10257;
const ETCD_PORTS: [u16; 2] = [2379, 2380];
/// Binaries kubeadm 1.36 requires on `$PATH`, in its order.
const REQUIRED_BINARIES: [&str; 3] = ["losetup", "mount", "cp"];
/// cgroup v2 controllers the kubelet needs (`devices` and `freezer` are built into v2).
const REQUIRED_CGROUPS: [&str; 4] = ["cpu", "cpuset", "memory", "pids"];

/// A check name from a path: every `/` becomes `-` (`FileAvailable--etc-kubernetes-...`).
fn path_name(prefix: &str, path: &str) -> String {
    format!("{prefix}{}", path.replace('/', "-"))
}

/// `(major, minor, patch)` of `v1.36.2` / `1.36.2-rc.0`.
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let text = text.trim().trim_start_matches('v');
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// The checks of one run, writing into one [`Findings`].
pub struct Checks<'a> {
    pub ctx: &'a Context<'a>,
    pub settings: &'a Settings,
    pub findings: Findings,
}

/// Whether `systemctl` exists; kubeadm's `GetInitSystem` looks it up on `$PATH`.
enum InitSystem {
    Systemd,
    None,
}

impl Checks<'_> {
    /// A file read that treats "not granted" as a failure of the phase (the pipeline is wrong),
    /// and "missing" as `None`.
    fn read(&self, path: &str) -> Result<Option<String>> {
        Ok(fs::read_optional(path)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn exists(&self, path: &str) -> Result<bool> {
        Ok(fs::exists(path)?)
    }

    // ---- root -------------------------------------------------------------------------------

    /// `IsPrivilegedUser`: the real user id of the wasmadm process is 0.
    pub fn is_privileged_user(&mut self) -> Result {
        let status = self.read("/proc/self/status")?.unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok());
        match uid {
            Some(0) => {}
            Some(_) => self
                .findings
                .error("IsPrivilegedUser", "user is not running as root"),
            None => self.findings.error(
                "IsPrivilegedUser",
                "cannot tell the user id: /proc/self/status has no Uid line",
            ),
        }
        Ok(())
    }

    // ---- command check lists ----------------------------------------------------------------

    /// `kubeadm init` checks, in kubeadm's order.
    pub fn init(&mut self) -> Result {
        self.init_node(false, false)
    }

    /// The checks of a control plane joining (kubeadm's `RunInitNodeChecks` for a secondary
    /// control plane) on the joining node's configuration: init's, without the checks every node
    /// had in `join`'s own, and without the external etcd check when the certificates are
    /// downloaded (`download_certs`).
    pub fn joining_control_plane(&mut self, download_certs: bool) -> Result {
        self.init_node(true, download_certs)
    }

    fn init_node(&mut self, secondary: bool, download_certs: bool) -> Result {
        let cluster = self.ctx.cluster_configuration();
        let init = self.ctx.config.init.clone().unwrap_or_default();
        let bind_port = init.local_api_endpoint.bind_port;

        self.num_cpu()?;
        self.mem()?;
        self.kubernetes_version(&cluster.kubernetes_version);
        self.firewalld(&[bind_port, KUBELET_PORT])?;
        let listening = self.listening_ports()?;
        for port in [bind_port, SCHEDULER_PORT, CONTROLLER_MANAGER_PORT] {
            self.port(&listening, port);
        }
        for manifest in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "etcd",
        ] {
            self.file_available(&format!("{MANIFESTS}/{manifest}.yaml"))?;
        }
        let advertise = init.local_api_endpoint.advertise_address.clone();
        if !advertise.is_empty() {
            self.http_proxy(&advertise);
        }
        for cidr in cluster
            .networking
            .service_subnet
            .split(',')
            .chain(cluster.networking.pod_subnet.split(','))
        {
            self.http_proxy_cidr(cidr.trim());
        }
        if secondary {
            // Only the IPv6 forwarding of an IPv6 advertise address: the rest was checked by join.
            if let Ok(ip @ IpAddr::V6(_)) = advertise.parse::<IpAddr>() {
                self.ip_forwarding(&[ip])?;
            }
        } else {
            self.common(&cluster.kubernetes_version, &listening)?;
            let mut families: Vec<IpAddr> = Vec::new();
            for cidr in cluster
                .networking
                .service_subnet
                .split(',')
                .chain(cluster.networking.pod_subnet.split(','))
            {
                if let Some((ip, _)) = netutil::parse_cidr(cidr) {
                    families.push(ip);
                }
            }
            if let Ok(ip) = advertise.parse::<IpAddr>() {
                families.push(ip);
            }
            self.ip_forwarding(&families)?;
        }

        if let Some(external) = cluster
            .etcd
            .external
            .as_ref()
            .filter(|_| !(secondary && download_certs))
        {
            self.findings.info(
                "ExternalEtcdVersion",
                format!(
                    "not checked: plugins have no network access to {:?}",
                    external.endpoints
                ),
            );
            for file in [&external.ca_file, &external.cert_file, &external.key_file] {
                if !file.is_empty() && !self.exists(file)? {
                    self.findings
                        .error("ExternalEtcdClientCertificates", format!("{file} doesn't exist"));
                }
            }
        } else if let Some(local) = &cluster.etcd.local {
            for port in ETCD_PORTS {
                self.port(&listening, port);
            }
            self.dir_available(&local.data_dir)?;
        }
        Ok(())
    }

    /// `kubeadm join` checks, in kubeadm's order.
    pub fn join(&mut self) -> Result {
        let join = self.ctx.config.join.clone().unwrap_or_default();
        self.file_available("/etc/kubernetes/kubelet.conf")?;
        self.file_available("/etc/kubernetes/bootstrap-kubelet.conf")?;
        let listening = self.listening_ports()?;
        self.common("", &listening)?;
        if join.control_plane.is_none() {
            self.file_available(&join.ca_cert_path)?;
        }
        if let Some(bt) = &join.discovery.bootstrap_token {
            let host = host_of(&bt.api_server_endpoint);
            if let Some(host) = host {
                self.http_proxy(&host);
                if let Ok(ip) = host.parse::<IpAddr>() {
                    self.ip_forwarding(&[ip])?;
                }
            }
        }
        Ok(())
    }

    /// The checks init and join share (kubeadm's `addCommonChecks`).
    fn common(&mut self, kubernetes_version: &str, listening: &[u16]) -> Result {
        let cri_socket = self.ctx.node_registration().cri_socket;
        let cri_error = self.cri_connect_error(&cri_socket)?;
        match &cri_error {
            Some(message) => {
                self.findings.error("CRI", message.clone());
                self.findings.error("ContainerRuntimeVersion", message.clone());
            }
            None => self.findings.info(
                "CRI",
                format!("socket {cri_socket} exists; the runtime's RPCs are not called by this plugin"),
            ),
        }
        self.swap()?;
        for binary in REQUIRED_BINARIES {
            self.in_path(binary, true)?;
        }
        let kubelet = self.kubelet_version()?;
        self.system_verification(&kubelet)?;
        self.hostname()?;
        self.kubelet_version_check(&kubelet, kubernetes_version);
        self.service_kubelet()?;
        self.port(listening, KUBELET_PORT);
        Ok(())
    }

    // ---- individual checks ------------------------------------------------------------------

    fn num_cpu(&mut self) -> Result {
        let status = self.read("/proc/self/status")?.unwrap_or_default();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|list| count_cpu_list(list.trim()));
        let cpus = match allowed {
            Some(n) if n > 0 => n,
            _ => self
                .read("/proc/cpuinfo")?
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count(),
        };
        if cpus < MIN_CPUS {
            self.findings.error(
                "NumCPU",
                format!("the number of available CPUs {cpus} is less than the required {MIN_CPUS}"),
            );
        }
        Ok(())
    }

    fn mem(&mut self) -> Result {
        let Some(meminfo) = self.read("/proc/meminfo")? else {
            self.findings
                .error("Mem", "failed to get system info: /proc/meminfo does not exist");
            return Ok(());
        };
        let kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok());
        match kib {
            Some(kib) if kib / 1024 < MIN_MEMORY_MB => self.findings.error(
                "Mem",
                format!(
                    "the system RAM ({} MB) is less than the minimum {MIN_MEMORY_MB} MB",
                    kib / 1024
                ),
            ),
            Some(_) => {}
            None => self
                .findings
                .error("Mem", "failed to get system info: no MemTotal in /proc/meminfo"),
        }
        Ok(())
    }

    fn kubernetes_version(&mut self, version: &str) {
        let Some((kmaj, kmin, _)) = parse_version(KUBEADM_VERSION) else {
            return;
        };
        match parse_version(version) {
            None => self.findings.error(
                "KubernetesVersion",
                format!("couldn't parse Kubernetes version {version:?}"),
            ),
            Some((maj, min, _)) if (maj, min) > (kmaj, kmin) => self.findings.warning(
                "KubernetesVersion",
                format!(
                    "Kubernetes version is greater than kubeadm version. Please consider to upgrade \
                     kubeadm. Kubernetes version: {version}. Kubeadm version: {kmaj}.{kmin}.x"
                ),
            ),
            Some(_) => {}
        }
    }

    /// Runs `systemctl <args>`; `None` when systemctl is not on the exec PATH.
    fn systemctl(&self, args: &[&str]) -> Result<Option<exec::Output>> {
        wasmadm_plugin_sdk::systemd::systemctl(args)
    }

    fn init_system(&self) -> Result<InitSystem> {
        // kubeadm: "systemctl in PATH implies systemd". `status` of a unit is read-only.
        Ok(match self.systemctl(&["status", "kubelet"])? {
            Some(_) => InitSystem::Systemd,
            None => InitSystem::None,
        })
    }

    fn firewalld(&mut self, ports: &[u16]) -> Result {
        const NO_INIT: &str = "no supported init system detected, skipping checking for services";
        if let InitSystem::None = self.init_system()? {
            self.findings.warning("Firewalld", NO_INIT);
            return Ok(());
        }
        let exists = self
            .systemctl(&["status", "firewalld"])?
            .is_some_and(|o| !String::from_utf8_lossy(&o.stdout).contains("Loaded: not-found"));
        if !exists {
            return Ok(());
        }
        let active = self
            .systemctl(&["is-active", "firewalld"])?
            .is_some_and(|o| matches!(String::from_utf8_lossy(&o.stdout).trim(), "active" | "activating"));
        if active {
            let list = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" ");
            self.findings.warning(
                "Firewalld",
                format!(
                    "firewalld is active, please ensure ports [{list}] are open or your cluster may \
                     not function correctly"
                ),
            );
        }
        Ok(())
    }

    fn service_kubelet(&mut self) -> Result {
        const CHECK: &str = "Service-kubelet";
        if let InitSystem::None = self.init_system()? {
            self.findings.warning(
                CHECK,
                "no supported init system detected, skipping checking for services",
            );
            return Ok(());
        }
        let exists = self
            .systemctl(&["status", "kubelet"])?
            .is_some_and(|o| !String::from_utf8_lossy(&o.stdout).contains("Loaded: not-found"));
        if !exists {
            self.findings.warning(CHECK, "kubelet service does not exist");
            return Ok(());
        }
        let enabled = self
            .systemctl(&["is-enabled", "kubelet"])?
            .is_some_and(|o| o.status == Some(0));
        if !enabled {
            self.findings.warning(
                CHECK,
                "kubelet service is not enabled, please run 'systemctl enable kubelet.service'",
            );
        }
        Ok(())
    }

    /// Listening TCP ports on the node (IPv4 and IPv6).
    fn listening_ports(&self) -> Result<Vec<u16>> {
        let mut ports = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            if let Some(text) = self.read(table)? {
                ports.extend(netutil::listening_ports(&text));
            }
        }
        Ok(ports)
    }

    fn port(&mut self, listening: &[u16], port: u16) {
        if listening.contains(&port) {
            self.findings
                .error(&format!("Port-{port}"), format!("Port {port} is in use"));
        }
    }

    fn file_available(&mut self, path: &str) -> Result {
        if self.exists(path)? {
            self.findings.error(
                &path_name("FileAvailable-", path),
                format!("{path} already exists"),
            );
        }
        Ok(())
    }

    fn dir_available(&mut self, path: &str) -> Result {
        let check = path_name("DirAvailable-", path);
        match wasmadm_plugin_sdk::files::list_dir(path) {
            Ok(entries) if !entries.is_empty() => self.findings.error(&check, format!("{path} is not empty")),
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) if e.code == ErrorCode::Denied => return Err(e.into()),
            Err(e) => self.findings.error(
                &check,
                format!("unable to check if {path} is empty: {}", e.message),
            ),
        }
        Ok(())
    }

    fn http_proxy(&mut self, host: &str) {
        let url_host = if host.contains(':') {
            format!("[{host}]:1234")
        } else {
            host.to_string()
        };
        if let Some(proxy) = netutil::https_proxy_for(host, &|k| std::env::var(k).ok()) {
            self.findings.warning(
                "HTTPProxy",
                format!(
                    "Connection to \"https://{url_host}\" uses proxy \"{proxy}\". If that is not intended, \
                     adjust your proxy settings"
                ),
            );
        }
    }

    fn http_proxy_cidr(&mut self, cidr: &str) {
        if cidr.is_empty() {
            return;
        }
        let Some(ip) = netutil::indexed_ip(cidr, 1) else {
            self.findings
                .error("HTTPProxyCIDR", format!("error parsing CIDR {cidr:?}"));
            return;
        };
        if let Some(proxy) = netutil::https_proxy_for(&ip.to_string(), &|k| std::env::var(k).ok()) {
            self.findings.warning(
                "HTTPProxyCIDR",
                format!(
                    "connection to {cidr:?} uses proxy \"{proxy}\". This may lead to malfunctional \
                     cluster setup. Make sure that Pod and Services IP ranges specified correctly as \
                     exceptions in proxy configuration"
                ),
            );
        }
    }

    /// kubeadm dials the CRI socket; a plugin cannot, so a missing socket is what it can see.
    fn cri_connect_error(&self, socket: &str) -> Result<Option<String>> {
        let path = socket.strip_prefix("unix://").unwrap_or(socket);
        if self.exists(path)? {
            return Ok(None);
        }
        Ok(Some(format!(
            "could not connect to the container runtime: failed to create new CRI runtime service: \
             validate service connection: validate CRI v1 runtime API for endpoint {socket:?}: \
             dial unix {path}: connect: no such file or directory"
        )))
    }

    fn swap(&mut self) -> Result {
        if let Some(swaps) = self.read("/proc/swaps")?
            && swaps.lines().filter(|l| !l.trim().is_empty()).count() > 1
        {
            self.findings.warning(
                "Swap",
                "swap is supported for cgroup v2 only. The kubelet must be properly configured to use \
                 swap. Please refer to https://kubernetes.io/docs/concepts/architecture/nodes/#swap-memory, \
                 or disable swap on the node",
            );
        }
        Ok(())
    }

    fn in_path(&mut self, binary: &str, mandatory: bool) -> Result {
        if fs::look_path(binary, &self.settings.path)?.is_none() {
            let message = format!("{binary} not found in system path");
            let check = format!("FileExisting-{binary}");
            if mandatory {
                self.findings.error(&check, message);
            } else {
                self.findings.warning(&check, message);
            }
        }
        Ok(())
    }

    /// `kubelet --version`, or kubeadm's error text for why it could not be had.
    fn kubelet_version(&self) -> Result<std::result::Result<String, String>> {
        let cmd = exec::Command {
            program: "kubelet".into(),
            args: vec!["--version".into()],
            env: Vec::new(),
            stdin: None,
        };
        let out = match exec::run(&cmd) {
            Ok(out) => out,
            Err(ExecError::NotFound(_)) => {
                return Ok(Err(
                    "cannot execute 'kubelet --version': executable file not found in $PATH".into(),
                ));
            }
            Err(ExecError::Denied(m)) => return Err(PhaseError::Denied(m)),
            Err(e) => return Ok(Err(format!("cannot execute 'kubelet --version': {}", e.text()))),
        };
        if out.status != Some(0) {
            return Ok(Err(format!(
                "cannot execute 'kubelet --version': exit status {}",
                out.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "signal".into())
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match text
            .strip_prefix("Kubernetes ")
            .filter(|v| parse_version(v).is_some() && v.starts_with('v'))
        {
            Some(v) => Ok(Ok(v.to_string())),
            None => Ok(Err(format!("Unable to parse output from Kubelet: {text:?}"))),
        }
    }

    fn kubelet_version_check(&mut self, kubelet: &std::result::Result<String, String>, control_plane: &str) {
        const CHECK: &str = "KubeletVersion";
        let version = match kubelet {
            Ok(v) => v,
            Err(e) => {
                self.findings
                    .error(CHECK, format!("couldn't get kubelet version: {e}"));
                return;
            }
        };
        let Some((maj, min, patch)) = parse_version(version) else {
            return;
        };
        let Some((kmaj, kmin, _)) = parse_version(KUBEADM_VERSION) else {
            return;
        };
        let minimum = (kmaj, kmin.saturating_sub(3), 0);
        if (maj, min, patch) < minimum {
            self.findings.error(
                CHECK,
                format!(
                    "Kubelet version {version:?} is lower than kubeadm can support. Please upgrade kubelet"
                ),
            );
            return;
        }
        if control_plane.is_empty() {
            return;
        }
        match parse_version(control_plane) {
            None => self.findings.error(
                CHECK,
                format!("couldn't parse Kubernetes version {control_plane:?}"),
            ),
            Some((cmaj, cmin, _)) if maj > cmaj || min > cmin => self.findings.error(
                CHECK,
                format!(
                    "the kubelet version is higher than the control plane version. This is not a \
                     supported version skew and may lead to a malfunctional cluster. Kubelet version: \
                     {version:?} Control plane version: {control_plane:?}"
                ),
            ),
            Some(_) => {}
        }
    }

    /// Kernel release, OS and cgroups, as kubeadm's system validators check them.
    fn system_verification(&mut self, kubelet: &std::result::Result<String, String>) -> Result {
        const CHECK: &str = "SystemVerification";
        // kubeadm picks its validators by the kubelet's version: without one it reports that alone,
        // with no verification output (real kubeadm v1.36.2 on a cgroup-v1 machine without kubelet).
        if let Err(e) = kubelet {
            self.findings
                .error(CHECK, format!("couldn't get kubelet version: {e}"));
            return Ok(());
        }
        let mut report: Vec<String> = Vec::new();
        let mut errors: Vec<String> = Vec::new();

        let release = self
            .read("/proc/sys/kernel/osrelease")?
            .unwrap_or_default()
            .trim()
            .to_string();
        report.push(format!("KERNEL_VERSION: {release}"));
        if !kernel_supported(&release) {
            self.findings
                .warning(CHECK, format!("unsupported kernel release: {release}"));
        }
        let os = self
            .read("/proc/sys/kernel/ostype")?
            .unwrap_or_else(|| "Linux".into())
            .trim()
            .to_string();
        report.push(format!("OS: {os}"));
        if os != "Linux" {
            errors.push(format!("unsupported operating system: {os}"));
        }

        match self.read("/sys/fs/cgroup/cgroup.controllers")? {
            Some(controllers) => {
                let have: Vec<&str> = controllers.split_whitespace().collect();
                let missing: Vec<&str> = REQUIRED_CGROUPS
                    .iter()
                    .copied()
                    .filter(|c| !have.contains(c))
                    .collect();
                for c in REQUIRED_CGROUPS {
                    let state = if have.contains(&c) { "enabled" } else { "missing" };
                    report.push(format!("CGROUPS_{}: {state}", c.to_uppercase()));
                }
                if !missing.is_empty() {
                    errors.push(format!("missing required cgroups: {}", missing.join(" ")));
                }
            }
            None => {
                let message = "cgroups v1 support is deprecated and will be removed in a future release. \
                    Please migrate to cgroups v2. To explicitly enable cgroups v1 support for kubelet \
                    v1.35 or newer, you must set the kubelet configuration option 'FailCgroupV1' to \
                    'false'. You must also explicitly skip this validation. For more information, see \
                    https://git.k8s.io/enhancements/keps/sig-node/5573-remove-cgroup-v1";
                let new_kubelet = kubelet
                    .as_ref()
                    .ok()
                    .and_then(|v| parse_version(v))
                    .is_some_and(|(maj, min, _)| (maj, min) >= (1, 35));
                if new_kubelet {
                    errors.push(message.into());
                } else {
                    self.findings.warning(CHECK, message);
                }
            }
        }
        if !errors.is_empty() {
            print("[preflight] The system verification failed. Printing the output from the verification:");
            for line in &report {
                print(line);
            }
        }
        for e in errors {
            self.findings.error(CHECK, e);
        }
        Ok(())
    }

    /// `Hostname`: a valid node name that resolves. Plugins have no DNS: `/etc/hosts` is read.
    fn hostname(&mut self) -> Result {
        const CHECK: &str = "Hostname";
        let name = self.ctx.node_name();
        if let Err(reason) = qualified_name(&name) {
            self.findings
                .warning(CHECK, format!("invalid node name format {name:?}: {reason}"));
        }
        let hosts = self.read("/etc/hosts")?.unwrap_or_default();
        let found = hosts.lines().any(|line| {
            let line = line.split('#').next().unwrap_or_default();
            line.split_whitespace()
                .skip(1)
                .any(|alias| alias.eq_ignore_ascii_case(&name))
        });
        if !found {
            self.findings
                .warning(CHECK, format!("hostname \"{name}\" could not be reached"));
            self.findings.warning(
                CHECK,
                format!("hostname \"{name}\": lookup {name}: not found in /etc/hosts (the only resolver a plugin has)"),
            );
        }
        Ok(())
    }

    /// `FileContent--proc-sys-net-ipv4-ip_forward` (and the IPv6 one) for the families in use.
    fn ip_forwarding(&mut self, addresses: &[IpAddr]) -> Result {
        let mut files = Vec::new();
        if addresses.iter().any(IpAddr::is_ipv4) {
            files.push("/proc/sys/net/ipv4/ip_forward");
        }
        if addresses.iter().any(IpAddr::is_ipv6) {
            files.push("/proc/sys/net/ipv6/conf/default/forwarding");
        }
        for file in files {
            let check = path_name("FileContent-", file);
            match self.read(file)? {
                None => self.findings.error(&check, format!("{file} does not exist")),
                Some(content) if !content.starts_with('1') => self
                    .findings
                    .error(&check, format!("{file} contents are not set to 1")),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// `ImagePull`: kubeadm pulls through the CRI, which a plugin cannot reach; it reports what
    /// kubeadm reports when the runtime is not reachable, and otherwise leaves pulls to the
    /// kubelet.
    pub fn image_pull(&mut self) -> Result {
        if self.ctx.raw.dry_run {
            print("[preflight] Would pull the required images (like 'kubeadm config images pull')");
            return Ok(());
        }
        print("[preflight] Pulling images required for setting up a Kubernetes cluster");
        print(
            "[preflight] This might take a minute or two, depending on the speed of your internet connection",
        );
        print("[preflight] You can also perform this action beforehand using 'kubeadm config images pull'");
        let socket = self.ctx.node_registration().cri_socket;
        match self.cri_connect_error(&socket)? {
            Some(message) => self.findings.error("ImagePull", message),
            None => self.findings.info(
                "ImagePull",
                "images are pulled by the kubelet when the static pods start",
            ),
        }
        Ok(())
    }
}

/// The count of CPUs in a list such as `0-3,8,10-11`.
fn count_cpu_list(list: &str) -> usize {
    list.split(',')
        .filter_map(|part| {
            let part = part.trim();
            match part.split_once('-') {
                Some((a, b)) => Some(b.parse::<usize>().ok()?.checked_sub(a.parse().ok()?)? + 1),
                None => part.parse::<usize>().ok().map(|_| 1),
            }
        })
        .sum()
}

/// kubeadm 1.36's kernel floor: 5.4, 5.10, 5.15 or any 6+.
fn kernel_supported(release: &str) -> bool {
    match parse_version(release) {
        Some((5, 4 | 10 | 15, _)) => true,
        Some((major, _, _)) => major >= 6,
        None => false,
    }
}

/// Kubernetes' `IsQualifiedName` for the name part: 1–63 characters, alphanumeric at both ends,
/// `-`, `_`, `.` inside.
fn qualified_name(name: &str) -> std::result::Result<(), &'static str> {
    let ok_inner = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let bytes = name.as_bytes();
    if name.is_empty() {
        return Err("name part must be non-empty");
    }
    if bytes.len() > 63 {
        return Err("name part must be no more than 63 characters");
    }
    if !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
        || !bytes.iter().all(|&b| ok_inner(b))
    {
        return Err(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        );
    }
    Ok(())
}

/// The host of `host:port` / `[v6]:port`.
fn host_of(endpoint: &str) -> Option<String> {
    if let Some(rest) = endpoint.strip_prefix('[') {
        return rest.split_once(']').map(|(h, _)| h.to_string());
    }
    endpoint.rsplit_once(':').map(|(h, _)| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            path_name("FileAvailable-", "/etc/kubernetes/kubelet.conf"),
            "FileAvailable--etc-kubernetes-kubelet.conf"
        );
        assert_eq!(count_cpu_list("0-3,8,10-11"), 7);
        assert_eq!(count_cpu_list("0"), 1);
        assert!(kernel_supported("6.1.0-18-amd64"));
        assert!(kernel_supported("5.15.0"));
        assert!(!kernel_supported("5.8.1"));
        assert!(!kernel_supported("4.19.0"));
        assert_eq!(parse_version("v1.36.2"), Some((1, 36, 2)));
        assert_eq!(parse_version("1.37.0-alpha.1"), Some((1, 37, 0)));
        assert!(qualified_name("n1").is_ok());
        assert!(qualified_name("-bad").is_err());
        assert_eq!(host_of("10.0.0.1:6443").as_deref(), Some("10.0.0.1"));
        assert_eq!(host_of("[fd00::1]:6443").as_deref(), Some("fd00::1"));
    }
}
