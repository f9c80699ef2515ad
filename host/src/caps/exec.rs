//! The `exec` capability: allow-listed commands, found on the exec PATH under `--root`, run with
//! a clean environment, a timeout and a cap on the output kept.

use super::path::{self, NodePath};
use super::plan::{Plan, PlanEntry};
use crate::bindings::wasmadm::plugin::exec::{Command as ExecCommand, ExecError, Output};
use crate::config::pipeline::ExecRule;
use cap_std::fs::Dir;
use cap_std::fs::PermissionsExt;
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The exec capability of one phase.
pub struct ExecCap {
    phase: String,
    root: Arc<Dir>,
    root_path: PathBuf,
    exec_path: Vec<String>,
    rules: Vec<ExecRule>,
    timeout: Duration,
    max_output: usize,
    dry_run: bool,
    plan: Plan,
}

/// Settings that come from the run rather than from the phase's grant.
pub struct ExecEnv {
    pub root: Arc<Dir>,
    pub root_path: PathBuf,
    pub exec_path: Vec<String>,
    pub dry_run: bool,
    pub plan: Plan,
}

impl ExecCap {
    pub fn new(
        phase: &str,
        env: ExecEnv,
        rules: Vec<ExecRule>,
        timeout: Duration,
        max_output: usize,
    ) -> Self {
        Self {
            phase: phase.to_string(),
            root: env.root,
            root_path: env.root_path,
            exec_path: env.exec_path,
            rules,
            timeout,
            max_output,
            dry_run: env.dry_run,
            plan: env.plan,
        }
    }

    /// The rule that allows `cmd`, or a denial naming what is missing.
    fn authorize(&self, cmd: &ExecCommand) -> Result<&ExecRule, ExecError> {
        let shown = command_line(cmd);
        let candidates: Vec<&ExecRule> = self.rules.iter().filter(|r| r.command == cmd.program).collect();
        if candidates.is_empty() {
            let allowed: Vec<&str> = self.rules.iter().map(|r| r.command.as_str()).collect();
            return Err(ExecError::Denied(format!(
                "exec: phase {:?} may not run {:?}: {:?} is not on its allow-list ({}); add it under \
                 grants.exec in the pipeline file if the phase should run it",
                self.phase,
                shown,
                cmd.program,
                if allowed.is_empty() {
                    "empty".to_string()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        let rule = candidates
            .iter()
            .find(|r| r.args.is_empty() || r.args.iter().any(|p| args_match(p, &cmd.args)))
            .ok_or_else(|| {
                ExecError::Denied(format!(
                    "exec: phase {:?} may run {:?} only with arguments {:?}, not {:?}",
                    self.phase,
                    cmd.program,
                    candidates.iter().flat_map(|r| r.args.iter()).collect::<Vec<_>>(),
                    cmd.args
                ))
            })?;
        if let Some((name, _)) = cmd.env.iter().find(|(k, _)| !rule.env.contains(k)) {
            return Err(ExecError::Denied(format!(
                "exec: phase {:?} may not set environment variable {name} for {:?} (allowed: {:?})",
                self.phase, cmd.program, rule.env
            )));
        }
        Ok(rule)
    }

    /// Finds the program on the exec PATH, under the root; returns its host path.
    fn look_path(&self, program: &str) -> Result<PathBuf, ExecError> {
        if program.is_empty() || program.contains('/') {
            return Err(ExecError::Denied(format!(
                "exec: {program:?} must be a bare command name, looked up on the exec PATH"
            )));
        }
        for dir in &self.exec_path {
            let candidate = format!("{}/{program}", dir.trim_end_matches('/'));
            let Ok(resolved) = path::resolve(&self.root, &candidate, true) else {
                continue;
            };
            if let Ok(meta) = self.root.metadata(resolved.relative())
                && meta.is_file()
                && meta.permissions().mode() & 0o111 != 0
            {
                return Ok(path::host_path(&self.root_path, &resolved));
            }
        }
        Err(ExecError::NotFound(format!(
            "executable file {program:?} not found in $PATH ({})",
            self.exec_path.join(":")
        )))
    }

    pub fn run(&self, cmd: ExecCommand) -> Result<Output, ExecError> {
        let rule = self.authorize(&cmd)?;
        if self.dry_run && !rule.read_only {
            self.plan.record(PlanEntry::Exec {
                phase: self.phase.clone(),
                command: command_line(&cmd),
            });
            return Ok(Output {
                status: Some(0),
                stdout: Vec::new(),
                stderr: Vec::new(),
                truncated: false,
                recorded: true,
            });
        }
        let program = self.look_path(&cmd.program)?;
        let search_path: Vec<String> = self
            .exec_path
            .iter()
            .filter_map(|d| NodePath::parse(d).ok())
            .map(|d| path::host_path(&self.root_path, &d).display().to_string())
            .collect();
        let mut child = Command::new(&program)
            .args(&cmd.args)
            .env_clear()
            .env("PATH", search_path.join(":"))
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.root_path)
            // A process group of its own: whatever the command starts is killed with it.
            .process_group(0)
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ExecError::Failed(format!("cannot start {}: {e}", command_line(&cmd))))?;
        tracing::debug!(phase = %self.phase, command = %command_line(&cmd), "running command");
        let group = ProcessGroup(child.id());

        if let (Some(input), Some(mut stdin)) = (cmd.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = std::io::Write::write_all(&mut stdin, &input);
            });
        }
        let cap = self.max_output;
        let stdout = child.stdout.take().map(|s| capture(s, cap));
        let stderr = child.stderr.take().map(|s| capture(s, cap));

        // The phase's timeout, cut to what is left of the phase: a command never outlives it.
        let limit = crate::deadline::bound(self.timeout);
        let deadline = Instant::now() + limit;
        let timed_out = || {
            ExecError::TimedOut(format!(
                "{} did not finish within {limit:?} (the phase's time left) and was killed with its \
                 process group",
                command_line(&cmd)
            ))
        };
        loop {
            match group.leader_exited() {
                Ok(true) => break,
                Ok(false) if Instant::now() >= deadline => {
                    group.kill();
                    let _ = child.wait();
                    return Err(timed_out());
                }
                Ok(false) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    group.kill();
                    let _ = child.wait();
                    return Err(ExecError::Failed(format!(
                        "waiting for {}: {e}",
                        command_line(&cmd)
                    )));
                }
            }
        }
        // The command is done; anything it left running in its group goes with it (killed
        // before the leader is reaped, so the group's id cannot have been reused).
        group.kill();
        let status = child
            .wait()
            .map_err(|e| ExecError::Failed(format!("waiting for {}: {e}", command_line(&cmd))))?;
        // A process that left the group may still hold the pipes: read them until the deadline.
        let (stdout, t1) = stdout
            .map(|c| c.finish(deadline))
            .transpose()
            .map_err(|()| timed_out())?
            .unwrap_or_default();
        let (stderr, t2) = stderr
            .map(|c| c.finish(deadline))
            .transpose()
            .map_err(|()| timed_out())?
            .unwrap_or_default();
        Ok(Output {
            status: status.code(),
            stdout,
            stderr,
            truncated: t1 || t2,
            recorded: false,
        })
    }
}

/// A command's process group (its id is the command's pid).
struct ProcessGroup(u32);

impl ProcessGroup {
    /// True once the group's leader exited; it is left unreaped, so its pid (the group's id)
    /// stays taken until `wait`.
    fn leader_exited(&self) -> std::io::Result<bool> {
        // SAFETY: waitid only writes into the zeroed siginfo we own; WNOWAIT leaves the child
        // for `Child::wait` to reap.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                self.0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: with WNOHANG, si_pid is 0 until the child has exited.
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// SIGKILL to every process of the group.
    fn kill(&self) {
        let Ok(id) = libc::pid_t::try_from(self.0) else {
            return;
        };
        // SAFETY: a plain kill(2) on the group we created; an empty group gives ESRCH.
        unsafe {
            libc::kill(-id, libc::SIGKILL);
        }
    }
}

/// A pipe read to its end on a thread, keeping at most `cap` bytes (the rest is drained so the
/// child never blocks on a full pipe).
struct Capture(std::sync::mpsc::Receiver<(Vec<u8>, bool)>);

fn capture(mut pipe: impl Read + Send + 'static, cap: usize) -> Capture {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    truncated |= n > room;
                }
            }
        }
        let _ = done.send((kept, truncated));
    });
    Capture(result)
}

impl Capture {
    /// What was read, once the pipe closed; `Err` when it is still open at `deadline` (the
    /// reading thread ends by itself when the last writer goes).
    fn finish(self, deadline: Instant) -> Result<(Vec<u8>, bool), ()> {
        self.0
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| ())
    }
}

/// `*` matches one argument, a final `**` the rest; anything else must be equal.
pub fn args_match(patterns: &[String], args: &[String]) -> bool {
    let mut i = 0;
    for (n, p) in patterns.iter().enumerate() {
        if p == "**" && n == patterns.len() - 1 {
            return true;
        }
        match args.get(i) {
            Some(a) if p == "*" || p == a => i += 1,
            _ => return false,
        }
    }
    i == args.len()
}

fn command_line(cmd: &ExecCommand) -> String {
    std::iter::once(cmd.program.as_str())
        .chain(cmd.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::args_match;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patterns() {
        assert!(args_match(&v(&["--version"]), &v(&["--version"])));
        assert!(!args_match(&v(&["--version"]), &v(&["--version", "x"])));
        assert!(!args_match(&v(&["--version"]), &v(&[])));
        assert!(args_match(
            &v(&["is-enabled", "*"]),
            &v(&["is-enabled", "kubelet"])
        ));
        assert!(!args_match(&v(&["is-enabled", "*"]), &v(&["is-enabled"])));
        assert!(args_match(&v(&["restart", "**"]), &v(&["restart", "a", "b"])));
        assert!(args_match(&v(&["**"]), &v(&[])));
        assert!(!args_match(&v(&["stop", "kubelet"]), &v(&["start", "kubelet"])));
    }
}
