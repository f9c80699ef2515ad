//! `wasmadm certs certificate-key`: a new random 32-byte key, as 64 lower-case hex characters on
//! one line (kubeadm's format), that `--certificate-key` accepts.

fn certificate_key() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmadm"))
        .args(["certs", "certificate-key"])
        .output()
        .expect("run wasmadm");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn prints_a_fresh_64_hex_character_key() {
    let first = certificate_key();
    let key = first.strip_suffix('\n').expect("one line");
    assert_eq!(key.len(), 64, "{first:?}");
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{key}"
    );
    assert!(kubeadm_copycerts::CertificateKey::from_hex(key).is_ok());
    assert_ne!(certificate_key(), first, "every call makes a new key");
}
