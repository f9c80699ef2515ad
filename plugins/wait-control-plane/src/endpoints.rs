//! Where to probe: the kubelet's healthz from the KubeletConfiguration, the control-plane
//! components' addresses and ports from their static Pod manifests (as kubeadm reads them).

use static_pod::{MANIFESTS_DIR, join_host_port};
use wasmadm_plugin_sdk::{ErrorText, fs};

/// One control-plane component to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: &'static str,
    pub url: String,
}

/// kube-apiserver `/livez`, kube-controller-manager `/healthz`, kube-scheduler `/livez`, with
/// the address and port flags of their manifests (kubeadm's `getControlPlaneComponents`).
pub fn control_plane(advertise_address: &str) -> Result<Vec<Component>, String> {
    let specs: [(&'static str, &str, &str, u16, &str); 3] = [
        (
            "kube-apiserver",
            "advertise-address",
            advertise_address,
            6443,
            "livez",
        ),
        (
            "kube-controller-manager",
            "bind-address",
            "127.0.0.1",
            10257,
            "healthz",
        ),
        ("kube-scheduler", "bind-address", "127.0.0.1", 10259, "livez"),
    ];
    let mut errors = Vec::new();
    let mut components = Vec::new();
    for (name, address_flag, default_address, default_port, endpoint) in specs {
        let path = format!("{MANIFESTS_DIR}/{name}.yaml");
        let manifest = match fs::read_optional(&path) {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => {
                errors.push(format!(
                    "failed to read manifest for {path:?}: file does not exist"
                ));
                continue;
            }
            Err(e) => {
                errors.push(format!("failed to read manifest for {path:?}: {}", e.text()));
                continue;
            }
        };
        let address = flag(&manifest, address_flag).unwrap_or_else(|| default_address.to_string());
        let port = match flag(&manifest, "secure-port") {
            Some(p) => match p.parse::<u16>() {
                Ok(p) => p,
                Err(_) => {
                    errors.push(format!("{path}: --secure-port={p} is not a port number"));
                    continue;
                }
            },
            None => default_port,
        };
        components.push(Component {
            name,
            url: format!("https://{}/{endpoint}", join_host_port(&address, port)),
        });
    }
    wasmadm_plugin_sdk::aggregate(errors).map_or(Ok(components), Err)
}

/// The value of `--<name>=<value>` in a manifest's command list.
fn flag(manifest: &str, name: &str) -> Option<String> {
    let prefix = format!("--{name}=");
    manifest.lines().find_map(|line| {
        let item = line.trim().strip_prefix('-')?.trim().trim_matches(['"', '\'']);
        item.strip_prefix(&prefix).map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::flag;

    #[test]
    fn reads_flags_from_a_command_list() {
        let m = "    command:\n    - kube-apiserver\n    - --advertise-address=10.200.0.2\n    - \"--secure-port=6443\"\n";
        assert_eq!(flag(m, "advertise-address").as_deref(), Some("10.200.0.2"));
        assert_eq!(flag(m, "secure-port").as_deref(), Some("6443"));
        assert_eq!(flag(m, "bind-address"), None);
    }
}
