//! Collecting check results the way kubeadm's preflight does: every check runs, each result is
//! reported to the host as it happens (so warnings appear in order with console lines), and the
//! phase fails at its end if any error remains.

use crate::types::{Finding, PhaseReport, Severity};

/// An ordered list of findings, with kubeadm's `--ignore-preflight-errors` demotion applied as
/// they are added.
#[derive(Default)]
pub struct Findings {
    items: Vec<Finding>,
    ignored: Vec<String>,
    outputs: Vec<(String, String)>,
}

impl Findings {
    /// A collector that demotes errors of the named checks (case-insensitive; `all` for every
    /// check) to warnings, as `--ignore-preflight-errors` does.
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

    pub fn error(&mut self, check: &str, message: impl Into<String>) {
        self.add(check, Severity::Error, message);
    }

    pub fn warning(&mut self, check: &str, message: impl Into<String>) {
        self.add(check, Severity::Warning, message);
    }

    pub fn info(&mut self, check: &str, message: impl Into<String>) {
        self.add(check, Severity::Info, message);
    }

    /// Publishes a value for later phases.
    pub fn output(&mut self, key: &str, value: impl Into<String>) {
        self.outputs.push((key.to_string(), value.into()));
    }

    pub fn items(&self) -> &[Finding] {
        &self.items
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|f| matches!(f.severity, Severity::Error))
    }

    /// The report to return from `run`. Findings were already reported as they were added, so
    /// they are not repeated here.
    pub fn into_report(self) -> PhaseReport {
        PhaseReport {
            findings: Vec::new(),
            outputs: self.outputs,
        }
    }
}
