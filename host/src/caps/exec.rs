//! The `exec` capability: allow-listed commands, found on the exec PATH under `--root`, run with
//! a clean environment, a timeout and a cap on the output kept.

use super::fs::{Access, FsCap};
use super::path;
use super::plan::{Plan, PlanEntry};
use crate::bindings::wasmadm::plugin::exec::{Command as ExecCommand, ExecError, Output};
use crate::grants::ExecGrant;
use crate::values::NodePath;
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
    rules: Vec<ExecGrant>,
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
        rules: Vec<ExecGrant>,
        timeout: Duration,
        max_output: usize,
    ) -> Self {
        Self {
            phase: phase.to_string(),
            root: env.root,
            // Commands run in the root with host paths under it: a relative `--root` would name
            // another directory once the child is in it.
            root_path: std::path::absolute(&env.root_path).unwrap_or(env.root_path),
            exec_path: env.exec_path,
            rules,
            timeout,
            max_output,
            dry_run: env.dry_run,
            plan: env.plan,
        }
    }

    /// The rule that allows `cmd` and, per argument, the access of a node-path pattern that
    /// matched it (`{path}`, `{writable-path}`), or a denial naming what is missing.
    fn authorize(&self, cmd: &ExecCommand) -> Result<(&ExecGrant, Vec<Option<Access>>), ExecError> {
        let shown = command_line(cmd);
        let candidates: Vec<&ExecGrant> = self.rules.iter().filter(|r| r.command == cmd.program).collect();
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
        let (rule, slots) = candidates
            .iter()
            .find_map(|r| {
                if r.args.is_empty() {
                    return Some((*r, vec![None; cmd.args.len()]));
                }
                r.args
                    .iter()
                    .find_map(|p| args_match(p, &cmd.args))
                    .map(|slots| (*r, slots))
            })
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
        Ok((rule, slots))
    }

    /// The arguments as the command gets them: each one a node-path pattern matched is resolved
    /// under the root and checked against the phase's file grants (`files`), then given as the
    /// host path.
    fn host_args(
        &self,
        cmd: &ExecCommand,
        slots: &[Option<Access>],
        files: &FsCap,
    ) -> Result<Vec<String>, ExecError> {
        cmd.args
            .iter()
            .zip(slots)
            .map(|(arg, slot)| match slot {
                None => Ok(arg.clone()),
                Some(access) => {
                    let node = files.authorize(arg, *access, true).map_err(|e| {
                        ExecError::Denied(format!("exec: argument of {:?}: {}", cmd.program, e.message))
                    })?;
                    Ok(path::host_path(&self.root_path, &node).display().to_string())
                }
            })
            .collect()
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

    /// Runs an allowed command; `files` is the phase's file capability, which node-path
    /// arguments are checked against.
    pub fn run(&self, cmd: ExecCommand, files: &FsCap) -> Result<Output, ExecError> {
        let (rule, slots) = self.authorize(&cmd)?;
        let args = self.host_args(&cmd, &slots, files)?;
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
            .args(&args)
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

/// `*` matches one argument, a final `**` the rest, `{path}` one absolute node path the phase may
/// read and `{writable-path}` one it may write (checked against its file grants when the command
/// runs); anything else must be equal. Returns, per argument, the access a node-path pattern asks
/// for, or `None` when the patterns do not match.
pub fn args_match(patterns: &[String], args: &[String]) -> Option<Vec<Option<Access>>> {
    let mut slots = Vec::with_capacity(args.len());
    for (n, p) in patterns.iter().enumerate() {
        if p == "**" && n == patterns.len() - 1 {
            slots.resize(args.len(), None);
            return Some(slots);
        }
        let a = args.get(slots.len())?;
        let slot = match p.as_str() {
            "*" => None,
            PATH_PATTERN if a.starts_with('/') => Some(Access::Read),
            WRITABLE_PATH_PATTERN if a.starts_with('/') => Some(Access::Write),
            literal if literal == a => None,
            _ => return None,
        };
        slots.push(slot);
    }
    (slots.len() == args.len()).then_some(slots)
}

/// The argument pattern for a node path the phase may read.
pub const PATH_PATTERN: &str = "{path}";
/// The argument pattern for a node path the phase may write.
pub const WRITABLE_PATH_PATTERN: &str = "{writable-path}";

fn command_line(cmd: &ExecCommand) -> String {
    std::iter::once(cmd.program.as_str())
        .chain(cmd.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::{Access, args_match as slots};

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn args_match(patterns: &[String], args: &[String]) -> bool {
        slots(patterns, args).is_some()
    }

    #[test]
    fn node_path_patterns() {
        assert_eq!(
            slots(&v(&["-in", "{path}"]), &v(&["-in", "/etc/kubernetes/pki/ca.crt"])),
            Some(vec![None, Some(Access::Read)])
        );
        assert_eq!(slots(&v(&["{path}"]), &v(&["etc/passwd"])), None, "relative");
        assert_eq!(
            slots(&v(&["{writable-path}", "**"]), &v(&["/var/lib/x", "a"])),
            Some(vec![Some(Access::Write), None])
        );
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
