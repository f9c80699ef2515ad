//! Side-by-side figures of kubeadm and wasmadm for the benchmarks that run both tools on the same
//! inputs: medians of wall time and of the tool's own CPU time, as a Markdown table.

use crate::cluster::Ran;
use std::time::Duration;

/// The number of runs per tool from environment variable `variable` (3 when unset).
pub fn runs(variable: &str) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// The median of `samples`.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The table's heading, its first column named `first`.
pub fn header(first: &str) -> String {
    format!(
        "| {first} | kubeadm wall | wasmadm wall | wall ratio | kubeadm CPU | wasmadm CPU | CPU ratio |\n\
         |---|---|---|---|---|---|---|"
    )
}

/// The runs of one row: wall and CPU times of each tool.
#[derive(Default)]
pub struct SideBySide {
    kubeadm: (Vec<Duration>, Vec<Duration>),
    wasmadm: (Vec<Duration>, Vec<Duration>),
}

impl SideBySide {
    /// Adds a run of `tool` (`"kubeadm"` or `"wasmadm"`).
    pub fn add(&mut self, tool: &str, ran: &Ran) {
        let (wall, cpu) = if tool == "kubeadm" {
            &mut self.kubeadm
        } else {
            &mut self.wasmadm
        };
        wall.push(ran.took);
        cpu.push(ran.cpu);
    }

    /// The row `label`: medians and wasmadm's ratios to kubeadm.
    pub fn row(self, label: &str) -> String {
        let [kw, kc, ww, wc] = [self.kubeadm.0, self.kubeadm.1, self.wasmadm.0, self.wasmadm.1]
            .map(|samples| median(samples).as_secs_f64());
        format!(
            "| {label} | {kw:.2} s | {ww:.2} s | {:.2}x | {kc:.2} s | {wc:.2} s | {:.2}x |",
            ww / kw,
            wc / kc
        )
    }
}
