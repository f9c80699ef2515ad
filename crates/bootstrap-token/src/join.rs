//! The `join` command line `init` and `token create --print-join-command` print (kubeadm's
//! `joinCommandTemplate`), with wasmadm's program name: the printed command must work with the
//! tool that printed it. Every flag is kubeadm's.

use crate::Error;
use kubeadm_pki::Certificate;

/// The program name printed in join commands.
pub const PROGRAM: &str = "wasmadm";

/// How a control-plane node joins; `None` in [`JoinCommand::control_plane`] for a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlane {
    /// `--certificate-key` when the control-plane certificates were uploaded.
    pub certificate_key: Option<String>,
}

/// What a join command says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinCommand {
    /// `host:port` of the API server (the kubeconfig server without `https://`).
    pub endpoint: String,
    pub token: String,
    /// `sha256:<hex>` pins of the cluster CA(s).
    pub ca_pins: Vec<String>,
    pub control_plane: Option<ControlPlane>,
}

impl JoinCommand {
    /// The command as `init` prints it: continued lines (`\`, newline, tab) and kubeadm's
    /// trailing spaces.
    pub fn multi_line(&self) -> String {
        let mut out = format!("{PROGRAM} join {} --token {} \\\n\t", self.endpoint, self.token);
        for pin in &self.ca_pins {
            out.push_str(&format!("--discovery-token-ca-cert-hash {pin} "));
        }
        if let Some(cp) = &self.control_plane {
            out.push_str("\\\n\t--control-plane ");
            if let Some(key) = &cp.certificate_key {
                out.push_str(&format!("--certificate-key {key}"));
            }
        }
        out
    }

    /// The command on one line, as `token create --print-join-command` prints it.
    pub fn one_line(&self) -> String {
        self.multi_line().replace("\\\n", "").replace('\t', "")
    }
}

/// `sha256:<hex>` pins of every CA certificate in a PEM bundle (kubeadm's `pubkeypin.Hash`: the
/// SHA-256 of the certificate's SubjectPublicKeyInfo).
pub fn ca_pins(bundle: &[u8]) -> Result<Vec<String>, Error> {
    let bad = |m: String| Error::InvalidKubeconfig(format!("certificate-authority-data: {m}"));
    let blocks = pem::parse_many(bundle).map_err(|e| bad(format!("not PEM: {e}")))?;
    let pins = blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| {
            Certificate::from_der(b.contents().to_vec())
                .and_then(|c| c.spki_pin())
                .map_err(|e| bad(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if pins.is_empty() {
        return Err(bad("no CA certificate found".into()));
    }
    Ok(pins)
}

/// `host:port` of a server URL, as kubeadm derives it (`https://` removed).
pub fn endpoint_of(server: &str) -> String {
    server.replace("https://", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(control_plane: Option<ControlPlane>) -> JoinCommand {
        JoinCommand {
            endpoint: endpoint_of("https://10.200.0.2:6443"),
            token: "abcdef.0123456789abcdef".into(),
            ca_pins: vec!["sha256:2ccf".into()],
            control_plane,
        }
    }

    #[test]
    fn worker_command_has_kubeadms_shape() {
        assert_eq!(
            command(None).multi_line(),
            "wasmadm join 10.200.0.2:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash sha256:2ccf "
        );
        assert_eq!(
            command(None).one_line(),
            "wasmadm join 10.200.0.2:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:2ccf "
        );
    }

    #[test]
    fn control_plane_command_carries_the_certificate_key() {
        let cp = command(Some(ControlPlane {
            certificate_key: Some("k3y".into()),
        }));
        assert_eq!(
            cp.multi_line(),
            "wasmadm join 10.200.0.2:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash sha256:2ccf \\\n\t--control-plane --certificate-key k3y"
        );
        let manual = command(Some(ControlPlane { certificate_key: None }));
        assert!(manual.multi_line().ends_with("\\\n\t--control-plane "));
    }
}
