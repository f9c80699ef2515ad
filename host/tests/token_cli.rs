//! The `wasmadm token` commands as a user runs them: the real binary against the in-memory
//! cluster persisted under `--root`, so each command is a new process that sees the last one's
//! tokens.

use std::process::{Command, Output};

fn wasmadm(root: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmadm"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run wasmadm")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn create_list_delete_round_trip() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    assert_eq!(
        stdout(&wasmadm(
            r,
            &[
                "token",
                "create",
                "abcdef.0123456789abcdef",
                "--description",
                "ci"
            ]
        )),
        "abcdef.0123456789abcdef\n"
    );
    let generated = stdout(&wasmadm(
        r,
        &["token", "create", "--ttl", "0", "--usages", "authentication"],
    ));
    let generated = generated.trim();
    assert!(
        generated.len() == 23 && generated.as_bytes()[6] == b'.',
        "{generated}"
    );

    let list = stdout(&wasmadm(r, &["token", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("TOKEN                     TTL   "), "{list}");
    assert!(lines[0].ends_with("DESCRIPTION   EXTRA GROUPS"), "{list}");
    let row = lines
        .iter()
        .find(|l| l.starts_with("abcdef.0123456789abcdef   23h"))
        .expect("abcdef row");
    assert!(row.contains("authentication,signing   ci   "), "{row}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{generated}   <forever>   <never>"))),
        "{list}"
    );

    let json = stdout(&wasmadm(r, &["token", "list", "-o", "json"]));
    assert!(json.contains("\"token\": \"abcdef.0123456789abcdef\""), "{json}");
    assert!(
        json.contains("\"apiVersion\": \"output.kubeadm.k8s.io/v1alpha3\""),
        "{json}"
    );

    assert_eq!(
        stdout(&wasmadm(r, &["token", "delete", "abcdef", generated])),
        format!(
            "bootstrap token \"abcdef\" deleted\nbootstrap token \"{}\" deleted\n",
            &generated[..6]
        )
    );
    assert_eq!(stdout(&wasmadm(r, &["token", "list"])).lines().count(), 1);
}

#[test]
fn bad_tokens_fail_with_the_expected_format_and_write_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = wasmadm(root.path(), &["token", "create", "abcdef.0123"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"abcdef.0123\"") && err.contains("[a-z0-9]{6}.[a-z0-9]{16}"),
        "{err}"
    );
    assert!(
        !root.path().join("var/lib/wasmadm").exists(),
        "no cluster state was written"
    );
    let out = wasmadm(root.path(), &["token", "delete", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nope\""));
}

#[test]
fn generate_needs_no_cluster() {
    let root = tempfile::tempdir().expect("tempdir");
    let a = stdout(&wasmadm(root.path(), &["token", "generate"]));
    let b = stdout(&wasmadm(root.path(), &["token", "generate"]));
    assert_ne!(a, b);
    for t in [&a, &b] {
        let (id, secret) = t.trim().split_once('.').expect("token");
        assert!(id.len() == 6 && secret.len() == 16, "{t}");
        assert!(
            t.trim()
                .bytes()
                .all(|c| c == b'.' || c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
    assert!(!root.path().join("var").exists());
}
