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

/// What `join` prints when a worker joined (kubeadm's `joinWorkerNodeDoneMsg`).
pub const WORKER_JOINED: &str = "
This node has joined the cluster:
* Certificate signing request was sent to apiserver and a response was received.
* The Kubelet was informed of the new secure connection details.

Run 'kubectl get nodes' on the control-plane to see this node join the cluster.

";

/// What `join --control-plane` prints (kubeadm's `joinControlPlaneDoneTemp`); `local_etcd` adds
/// the etcd line (an empty line with external etcd).
pub fn control_plane_joined(admin_conf: &str, local_etcd: bool) -> String {
    let etcd = if local_etcd {
        "* A new etcd member was added to the local/stacked etcd cluster."
    } else {
        ""
    };
    format!(
        "
This node has joined the cluster and a new control plane instance was created:

* Certificate signing request was sent to apiserver and approval was received.
* The Kubelet was informed of the new secure connection details.
* Control plane label and taint were applied to the new node.
* The Kubernetes control plane instances scaled up.
{etcd}

To start administering your cluster from this node, you need to run the following as a regular user:

\tmkdir -p $HOME/.kube
\tsudo cp -i {admin_conf} $HOME/.kube/config
\tsudo chown $(id -u):$(id -g) $HOME/.kube/config

Run 'kubectl get nodes' to see this node join the cluster.

"
    )
}

/// The texts around the join commands: kubeadm's `initDoneTempl`, line for line.
const HEADER: &str = "
Your Kubernetes control-plane has initialized successfully!

To start using your cluster, you need to run the following as a regular user:

  mkdir -p $HOME/.kube
  sudo cp -i ADMIN_CONF $HOME/.kube/config
  sudo chown $(id -u):$(id -g) $HOME/.kube/config

Alternatively, if you are the root user, you can run:

  export KUBECONFIG=/etc/kubernetes/admin.conf

You should now deploy a pod network to the cluster.
Run \"kubectl apply -f [podnetwork].yaml\" with one of the options listed at:
  https://kubernetes.io/docs/concepts/cluster-administration/addons/

";

const CONTROL_PLANE_UPLOADED: &str = "\
You can now join any number of control-plane nodes running the following command on each as root:

  COMMAND

Please note that the certificate-key gives access to cluster sensitive data, keep it secret!
As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use
\"PROGRAM init phase upload-certs --upload-certs\" to reload certs afterward.

";

const CONTROL_PLANE_MANUAL: &str = "\
You can now join any number of control-plane nodes by copying certificate authorities
and service account keys on each node and then running the following as root:

  COMMAND

";

const WORKER: &str = "\
Then you can join any number of worker nodes by running the following on each as root:

COMMAND
";

/// `init`'s closing message for one token (kubeadm's `initDoneTempl`): the control-plane join
/// command only with a `controlPlaneEndpoint`, with `--certificate-key` when the certificates
/// were uploaded; the worker command always. Ends with a newline.
pub fn init_done_message(
    admin_conf: &str,
    command: &JoinCommand,
    control_plane_endpoint: bool,
    certificate_key: Option<&str>,
) -> String {
    let mut out = HEADER.replace("ADMIN_CONF", admin_conf);
    if control_plane_endpoint {
        let cp = JoinCommand {
            control_plane: Some(ControlPlane {
                certificate_key: certificate_key.map(str::to_string),
            }),
            ..command.clone()
        };
        let text = if certificate_key.is_some() {
            CONTROL_PLANE_UPLOADED
        } else {
            CONTROL_PLANE_MANUAL
        };
        out.push_str(
            &text
                .replace("COMMAND", &cp.multi_line())
                .replace("PROGRAM", PROGRAM),
        );
    }
    let worker = JoinCommand {
        control_plane: None,
        ..command.clone()
    };
    out.push_str(&WORKER.replace("COMMAND", &worker.multi_line()));
    out
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
        let manual = command(Some(ControlPlane {
            certificate_key: None,
        }));
        assert!(manual.multi_line().ends_with("\\\n\t--control-plane "));
    }

    /// The lines kubeadm's template gives between the CNI hint and the worker command.
    #[test]
    fn init_message_with_uploaded_certificates() {
        let text = init_done_message("/etc/kubernetes/admin.conf", &command(None), true, Some("k3y"));
        let expected = "\n\
            You can now join any number of control-plane nodes running the following command on each as root:\n\
            \n  wasmadm join 10.200.0.2:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash sha256:2ccf \\\n\t--control-plane --certificate-key k3y\n\
            \n\
            Please note that the certificate-key gives access to cluster sensitive data, keep it secret!\n\
            As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use\n\
            \"wasmadm init phase upload-certs --upload-certs\" to reload certs afterward.\n\
            \n\
            Then you can join any number of worker nodes by running the following on each as root:\n\
            \nwasmadm join 10.200.0.2:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash sha256:2ccf \n";
        assert!(
            text.starts_with("\nYour Kubernetes control-plane has initialized successfully!\n"),
            "{text}"
        );
        assert!(text.ends_with(expected), "{text}");
    }

    #[test]
    fn init_message_without_uploaded_certificates_or_endpoint() {
        let manual = init_done_message("/etc/kubernetes/admin.conf", &command(None), true, None);
        assert!(manual.contains(
            "You can now join any number of control-plane nodes by copying certificate authorities\n\
             and service account keys on each node and then running the following as root:\n\n  wasmadm join "
        ));
        assert!(
            manual.contains("--control-plane \n\nThen you can join"),
            "{manual}"
        );
        let worker = init_done_message("/etc/kubernetes/admin.conf", &command(None), false, Some("k3y"));
        assert!(!worker.contains("control-plane node"), "{worker}");
        assert!(!worker.contains("--control-plane"), "{worker}");
        assert!(worker.contains("addons/\n\nThen you can join"), "{worker}");
    }
}
