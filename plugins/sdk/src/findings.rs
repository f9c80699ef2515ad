//! Collecting check results the way kubeadm's preflight does: every check runs, each result is
//! reported to the host as it happens (so warnings appear in order with console lines), and the
//! phase fails at its end if any error remains.

use crate::types::{Finding, PhaseReport, Severity};

/// An ordered list of findings, with kubeadm's `--ignore-preflight-errors` demotion applied as
/// they are added. Each finding is reported to the host as it is added (so it runs in a plugin).
///
/// ```no_run
/// use wasmadm_plugin_sdk::{Findings, fs, types::{PhaseError, PhaseReport}};
/// fn run(ignored: &[String]) -> Result<PhaseReport, PhaseError> {
///     let mut findings = Findings::ignoring(ignored);
///     if !fs::exists("/usr/bin/vendor-agent")? {
///         findings.error("VendorAgent", "/usr/bin/vendor-agent is missing");
///     }
///     Ok(findings.into_report()) // the host fails the run when an error remains
/// }
/// ```
#[derive(Default)]
pub struct Findings {
    items: Vec<Finding>,
    ignored: Vec<String>,
    outputs: Vec<(String, String)>,
}

impl Findings {
    /// A collector that demotes errors of the named checks (case-insensitive; `all` for every
    /// check) to warnings, as `--ignore-preflight-errors` does.
    ///
    /// ```no_run
    /// use wasmadm_plugin_sdk::Findings;
    /// let mut findings = Findings::ignoring(&["Swap".to_string()]);
    /// findings.error("swap", "swap is on"); // a warning now: names compare case-insensitively
    /// assert!(!findings.has_errors());
    /// ```
    pub fn ignoring(names: &[String]) -> Self {
        Self {
            ignored: names.iter().map(|n| n.to_lowercase()).collect(),
            ..Self::default()
        }
    }

    fn is_ignored(&self, check: &str) -> bool {
        let check = check.to_lowercase();
        self.ignored.iter().any(|n| n == "all" || *n == check)
    }

    /// Adds and reports a finding of `check` (kubeadm's check name, as in `[ERROR Name]`).
    ///
    /// ```no_run
    /// use wasmadm_plugin_sdk::{Findings, types::Severity};
    /// let mut findings = Findings::default();
    /// findings.add("Port-6443", Severity::Error, "Port 6443 is in use");
    /// assert_eq!(findings.items()[0].check, "Port-6443");
    /// ```
    pub fn add(&mut self, check: &str, severity: Severity, message: impl Into<String>) {
        let severity = match severity {
            Severity::Error if self.is_ignored(check) => Severity::Warning,
            s => s,
        };
        let finding = Finding {
            check: check.to_string(),
            severity,
            message: message.into(),
        };
        crate::log::report(&finding);
        self.items.push(finding);
    }

    /// Adds an error (a warning when `check` is ignored).
    ///
    /// ```no_run
    /// let mut findings = wasmadm_plugin_sdk::Findings::default();
    /// findings.error("FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml", "already exists");
    /// assert!(findings.has_errors());
    /// ```
    pub fn error(&mut self, check: &str, message: impl Into<String>) {
        self.add(check, Severity::Error, message);
    }

    /// Adds a warning: printed as `[WARNING <check>]: <message>`, never fatal.
    ///
    /// ```no_run
    /// let mut findings = wasmadm_plugin_sdk::Findings::default();
    /// findings.warning("Hostname", "hostname \"n1\" could not be reached");
    /// assert!(!findings.has_errors());
    /// ```
    pub fn warning(&mut self, check: &str, message: impl Into<String>) {
        self.add(check, Severity::Warning, message);
    }

    /// Adds an informational finding (logged, not printed).
    ///
    /// ```no_run
    /// let mut findings = wasmadm_plugin_sdk::Findings::default();
    /// findings.info("KubeletVersion", "kubelet v1.36.0");
    /// assert_eq!(findings.items().len(), 1);
    /// ```
    pub fn info(&mut self, check: &str, message: impl Into<String>) {
        self.add(check, Severity::Info, message);
    }

    /// Publishes a value for later phases, which read it as `<phase>.<key>`
    /// ([`Context::input`](crate::Context::input)).
    ///
    /// ```
    /// let mut findings = wasmadm_plugin_sdk::Findings::default();
    /// findings.output("token", "abcdef.0123456789abcdef");
    /// assert_eq!(findings.into_report().outputs[0].0, "token");
    /// ```
    pub fn output(&mut self, key: &str, value: impl Into<String>) {
        self.outputs.push((key.to_string(), value.into()));
    }

    /// The findings so far, in order, as reported (after demotion).
    ///
    /// ```
    /// assert!(wasmadm_plugin_sdk::Findings::default().items().is_empty());
    /// ```
    pub fn items(&self) -> &[Finding] {
        &self.items
    }

    /// True when an error remains after demotion: the phase will fail.
    ///
    /// ```
    /// assert!(!wasmadm_plugin_sdk::Findings::ignoring(&["all".into()]).has_errors());
    /// ```
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|f| matches!(f.severity, Severity::Error))
    }

    /// The report to return from `run`. Findings were already reported as they were added, so
    /// they are not repeated here.
    ///
    /// ```
    /// let report = wasmadm_plugin_sdk::Findings::default().into_report();
    /// assert!(report.findings.is_empty() && report.outputs.is_empty());
    /// ```
    pub fn into_report(self) -> PhaseReport {
        PhaseReport {
            findings: Vec::new(),
            outputs: self.outputs,
        }
    }
}
