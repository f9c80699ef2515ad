//! Polling health endpoints until they answer `200`, with kubeadm's interval and console lines.

use crate::duration;
use std::time::{Duration, Instant};
use wasmadm_plugin_sdk::health::{self, HealthError, Origin};
use wasmadm_plugin_sdk::types::PhaseError;
use wasmadm_plugin_sdk::{ErrorText, print};

/// kubeadm's `KubernetesAPICallRetryInterval`.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// How often a long wait says it is still waiting.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);
/// The longest one request may take (the host caps it at 60 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one probe found.
pub enum Probe {
    /// `200`; `simulated` when the in-memory cluster's node answered.
    Healthy { simulated: bool },
    /// Anything else, as kubeadm would word the failure.
    Unhealthy(String),
}

/// One `GET`; a denial ends the wait at once (it is a grant problem, not a slow start).
pub fn probe(
    url: &str,
    deadline: Instant,
    describe: impl Fn(Failure) -> String,
) -> Result<Probe, PhaseError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let timeout = left.clamp(Duration::from_millis(1), REQUEST_TIMEOUT);
    match health::get(url, timeout.as_millis() as u32) {
        Ok(r) if r.status == 200 || r.origin == Origin::Recorded => Ok(Probe::Healthy {
            simulated: r.origin == Origin::Simulated,
        }),
        Ok(r) => Ok(Probe::Unhealthy(describe(Failure::Status(r.status)))),
        Err(HealthError::Denied(m)) => Err(PhaseError::Denied(m)),
        Err(e) => Ok(Probe::Unhealthy(describe(Failure::Error(e.text())))),
    }
}

/// Why a probe failed.
pub enum Failure {
    Status(u16),
    Error(String),
}

/// The suffix the healthy line gets when nothing real was checked.
pub fn simulated_note(simulated: bool) -> &'static str {
    if simulated {
        " (simulated node of the in-memory cluster: no request was sent)"
    } else {
        ""
    }
}

/// Sleeps until the next attempt and returns true, or, when the next attempt would not start
/// before `deadline`, sleeps until the deadline and returns false (as Go's
/// `PollUntilContextTimeout`: no last attempt squeezed into the final instant, whose only
/// possible outcome would be a timeout hiding the real error).
pub fn pause(deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    if left <= RETRY_INTERVAL {
        std::thread::sleep(left);
        false
    } else {
        std::thread::sleep(RETRY_INTERVAL);
        true
    }
}

/// Prints `line(elapsed)` every [`PROGRESS_INTERVAL`] of a long wait.
pub struct Progress {
    start: Instant,
    next: Duration,
}

impl Progress {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            next: PROGRESS_INTERVAL,
        }
    }

    pub fn tick(&mut self, line: impl Fn(&str) -> String) {
        let elapsed = self.start.elapsed();
        if elapsed >= self.next {
            print(&line(&duration::go(Duration::from_secs(elapsed.as_secs()))));
            self.next = Duration::from_secs(elapsed.as_secs()) + PROGRESS_INTERVAL;
        }
    }
}
