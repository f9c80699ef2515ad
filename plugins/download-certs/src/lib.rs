//! kubeadm's `control-plane-prepare/download-certs` join phase: a node joining as a control
//! plane with `--certificate-key` reads Secret `kube-system/kubeadm-certs` as the bootstrap token,
//! decrypts every entry with the key (all or nothing) and writes the cluster's CA keys and
//! certificates and the service-account key pair (keys 0600, certificates 0644). A worker, or a
//! control plane without a key, downloads nothing.
//!
//! It reaches the cluster through `kube.connect` (discovery, then the bootstrap token), with
//! rules a `0.1` capability request cannot express: the pipeline grants `identity:
//! anonymous` get on `kube-public/cluster-info`, `identity: bootstrap-token` get on ConfigMap
//! `kube-system/kubeadm-config` and Secret `kube-system/kubeadm-certs`.

use base64::Engine as _;
use kubeadm_copycerts::{self as copycerts, CertificateKey};
use std::collections::BTreeMap;
use wasmadm_plugin_sdk::kube::ErrorCode;
use wasmadm_plugin_sdk::types::{Command, PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, Plugin, apply, done, export_plugin, files, print};

/// Where the downloaded files go (the ClusterConfiguration's default `certificatesDir`).
const PKI: &str = "/etc/kubernetes/pki";

struct DownloadCerts;

impl Plugin for DownloadCerts {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info(
            "download-certs",
            "Download certificates shared among control-plane nodes from the kubeadm-certs Secret",
        );
        info.needs.files_write = vec![PKI.into()];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let join = ctx.config.join.clone().unwrap_or_default();
        let Some(control_plane) = join
            .control_plane
            .as_ref()
            .filter(|_| ctx.command() == Command::Join)
        else {
            return Ok(done());
        };
        if control_plane.certificate_key.is_empty() {
            wasmadm_plugin_sdk::debug("[download-certs] Skipping certs download");
            return Ok(done());
        }
        let key = CertificateKey::from_hex(&control_plane.certificate_key)
            .map_err(|e| PhaseError::InvalidConfig(format!("controlPlane.certificateKey: {e}")))?;
        let discovered = kubeadm_discovery::discover(&ctx.config)?;
        let client = discovered.client()?;
        let outputs = kubeadm_discovery::announce_config_read(&ctx);
        let cluster = kubeadm_discovery::cluster_configuration(&client)?;
        print(&format!(
            "[download-certs] Downloading the certificates in Secret {:?} in the \"kube-system\" Namespace",
            copycerts::SECRET_NAME
        ));
        let secret = match client.get(&secrets(), Some("kube-system"), copycerts::SECRET_NAME) {
            Ok(text) => apply::parse(&text)?,
            Err(e) if e.code == ErrorCode::NotFound => {
                return Err(PhaseError::Failed(format!(
                    "error downloading the secret: Secret {:?} was not found in the \"kube-system\" \
                     Namespace. This Secret might have expired. Please, run `wasmadm init phase \
                     upload-certs --upload-certs` on a control plane to generate a new one",
                    copycerts::SECRET_NAME
                )));
            }
            Err(e) if e.code == ErrorCode::Denied => return Err(PhaseError::Denied(e.message)),
            Err(e) => {
                return Err(PhaseError::Failed(format!(
                    "error downloading the secret: {}",
                    e.message
                )));
            }
        };
        // Everything is decrypted and checked before anything is written.
        let sealed = secret_data(&secret)?;
        let plain = copycerts::decrypt_all(&sealed, &key)
            .map_err(|e| PhaseError::Failed(format!("error decoding secret data with provided key: {e}")))?;
        let writes =
            copycerts::files_to_write(&cluster, &plain).map_err(|e| PhaseError::Failed(e.to_string()))?;
        print(&format!(
            "[download-certs] Saving the certificates to the folder: {:?}",
            cluster.certificates_dir
        ));
        for (path, contents) in writes {
            if let Some((dir, _)) = path.rsplit_once('/').filter(|(d, _)| !d.is_empty()) {
                files::create_dir(dir, 0o755)?;
            }
            let mode = if path.ends_with(".key") { 0o600 } else { 0o644 };
            files::write(&path, &contents, mode)?;
        }
        let mut report = done();
        report.outputs = outputs;
        Ok(report)
    }
}

fn secrets() -> wasmadm_plugin_sdk::kube::ResourceType {
    apply::resource("", "v1", "Secret", "secrets", true)
}

/// The Secret's entries, base64-decoded.
fn secret_data(secret: &serde_json::Value) -> Result<BTreeMap<String, Vec<u8>>, PhaseError> {
    let Some(data) = secret["data"].as_object() else {
        return Ok(BTreeMap::new());
    };
    data.iter()
        .map(|(name, value)| {
            let text = value.as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| {
                    PhaseError::Failed(format!(
                        "entry {name:?} of Secret {:?} is not base64: {e}",
                        copycerts::SECRET_NAME
                    ))
                })?;
            Ok((name.clone(), bytes))
        })
        .collect()
}

export_plugin!(DownloadCerts);
