//! What kubeadm asks the kernel rather than the file system: facts about the node that the host
//! hands every phase (as `phase-context.inputs` named `node.<fact>`), so no plugin needs a grant
//! on the host's own `/proc` for them.
//!
//! `--root DIR` moves the node's files, as kubeadm's `--rootfs` does, but not its kernel: a fact
//! comes from the machine unless the node directory provides it (a fixture's
//! `proc/sys/kernel/hostname`, say), so a sandbox root without `/proc` still runs.

use std::path::Path;

/// The node's host name: `<root>/proc/sys/kernel/hostname` when the node directory has it, else
/// the machine's (kubeadm's `os.Hostname()`), else `localhost`.
pub fn hostname(root: &Path) -> String {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    read(&root.join("proc/sys/kernel/hostname"))
        .or_else(|| read(Path::new("/proc/sys/kernel/hostname")))
        .unwrap_or_else(|| "localhost".into())
}

/// The facts of the node at `root`, as phase inputs (`node.hostname`).
pub fn inputs(root: &Path) -> Vec<(String, String)> {
    vec![("node.hostname".into(), hostname(root))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_directory_wins_and_the_machine_fills_in() {
        let node = tempfile::tempdir().expect("tmp");
        let machine = hostname(Path::new("/nonexistent-root"));
        assert!(!machine.is_empty());
        assert_eq!(
            hostname(node.path()),
            machine,
            "no proc/ under the root: the machine's"
        );
        std::fs::create_dir_all(node.path().join("proc/sys/kernel")).expect("mkdir");
        std::fs::write(node.path().join("proc/sys/kernel/hostname"), "fixture-node\n").expect("write");
        assert_eq!(hostname(node.path()), "fixture-node");
        assert_eq!(
            inputs(node.path()),
            [("node.hostname".to_string(), "fixture-node".to_string())]
        );
    }
}
