//! The deadline of the plugin call running on this thread: every host call a plugin makes
//! (capabilities, WASI clocks, API requests, commands) ends by it, so a phase's timeout holds
//! even while the guest is blocked in the host, where Wasmtime's epoch interruption cannot reach.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with `deadline` as this thread's call deadline (the previous one is restored after).
pub fn scope<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEADLINE.with(|d| d.replace(Some(deadline))));
    f()
}

/// The current call's deadline, if one is running on this thread.
pub fn current() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// `wanted`, cut to the time left before the current call's deadline (zero once it passed).
pub fn bound(wanted: Duration) -> Duration {
    match current() {
        Some(deadline) => wanted.min(deadline.saturating_duration_since(Instant::now())),
        None => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_is_cut_inside_a_scope_only() {
        let long = Duration::from_secs(3600);
        assert_eq!(bound(long), long);
        let cut = scope(Instant::now() + Duration::from_secs(1), || bound(long));
        assert!(cut <= Duration::from_secs(1));
        assert_eq!(bound(long), long, "restored after the scope");
    }
}
