//! The `upload-certs` phase: with `--upload-certs`, the cluster's CA keys and the service-account
//! key pair are encrypted with the certificate key (AES-256-GCM, kubeadm's format) into Secret
//! `kube-system/kubeadm-certs`, owned by a bootstrap token that expires in two hours (so the
//! garbage collector deletes the Secret with the token), and readable by joining nodes through
//! Role/RoleBinding `kubeadm:kubeadm-certs`. Without the flag it only says it is skipped.
//!
//! A second run with the same key over the same files finds the Secret already holding them and
//! changes nothing; a new key (or changed files) uploads again, as kubeadm does.

mod token;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kubeadm_copycerts::{self as copycerts, CertificateKey};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use wasmadm_plugin_sdk::apply::{self, Update, create_or_update, resource};
use wasmadm_plugin_sdk::config::ClusterConfiguration;
use wasmadm_plugin_sdk::config::defaults::DEFAULT_CERTIFICATES_DIR;
use wasmadm_plugin_sdk::files::ErrorCode;
use wasmadm_plugin_sdk::kube::{self, Client};
use wasmadm_plugin_sdk::types::{KubeRule, PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, Findings, Plugin, done, export_plugin, files, print};

const NS: &str = "kube-system";
/// The group of kubeadm's default bootstrap tokens, which joining control-plane nodes use.
const NODE_BOOTSTRAP_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

fn rule(verbs: &[&str], group: &str, resource: &str, names: &[&str]) -> KubeRule {
    KubeRule::new(verbs, group, &[resource])
        .in_namespaces(&[NS])
        .named(names)
}

/// The phase's kube rules: its Secret, Role and RoleBinding by name, and creating the owner
/// token's Secret (whose name is random, so it cannot be listed).
pub fn kube_rules() -> Vec<KubeRule> {
    let rw = ["get", "create", "update"];
    let rbac = "rbac.authorization.k8s.io";
    vec![
        rule(&rw, "", "secrets", &[copycerts::SECRET_NAME]),
        rule(&["create"], "", "secrets", &[]),
        rule(&rw, rbac, "roles", &[copycerts::ROLE_NAME]),
        rule(&rw, rbac, "rolebindings", &[copycerts::ROLE_NAME]),
    ]
}

fn secrets() -> kube::ResourceType {
    resource("", "v1", "Secret", "secrets", true)
}

/// The files to upload, as (Secret key, contents); a missing file is an empty entry, as in
/// kubeadm (external etcd without client certificates).
fn read_certs(cluster: &ClusterConfiguration) -> Result<BTreeMap<String, Vec<u8>>, PhaseError> {
    copycerts::certs_to_transfer(cluster)
        .into_iter()
        .map(|(name, path)| match files::read(&path) {
            Ok(bytes) => Ok((name, bytes)),
            Err(e) if e.code == ErrorCode::NotFound => Ok((name, Vec::new())),
            Err(e) => Err(PhaseError::from(e)),
        })
        .collect()
}

/// kubeadm refuses to upload when the cluster has no CA key to share (external CA).
fn refuse_external_ca(plain: &BTreeMap<String, Vec<u8>>) -> Result<(), PhaseError> {
    for ca in ["ca", "front-proxy-ca"] {
        let has = |ext: &str| plain.get(&format!("{ca}.{ext}")).is_some_and(|b| !b.is_empty());
        if has("crt") && !has("key") {
            return Err(PhaseError::InvalidConfig(format!(
                "can't use upload-certs with an external CA or an external front-proxy CA: {ca}.key is \
                 missing; copy the certificates to the other control-plane nodes yourself"
            )));
        }
    }
    Ok(())
}

/// True when the stored Secret already holds exactly these files under this key.
fn already_uploaded(stored: &Value, plain: &BTreeMap<String, Vec<u8>>, key: &CertificateKey) -> bool {
    if stored["metadata"]["ownerReferences"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        return false;
    }
    let Some(data) = stored["data"].as_object() else {
        return false;
    };
    let decoded: Option<BTreeMap<String, Vec<u8>>> = data
        .iter()
        .map(|(k, v)| Some((k.clone(), B64.decode(v.as_str()?).ok()?)))
        .collect();
    decoded
        .and_then(|d| copycerts::decrypt_all(&d, key).ok())
        .is_some_and(|d| &d == plain)
}

fn encrypt_all(
    plain: &BTreeMap<String, Vec<u8>>,
    key: &CertificateKey,
) -> Result<Map<String, Value>, PhaseError> {
    plain
        .iter()
        .map(|(name, bytes)| {
            let sealed = if bytes.is_empty() {
                Vec::new()
            } else {
                copycerts::encrypt(bytes, key).map_err(|e| PhaseError::Failed(e.to_string()))?
            };
            Ok((name.clone(), Value::String(B64.encode(sealed))))
        })
        .collect()
}

fn upload(client: &Client, cluster: &ClusterConfiguration, key: &CertificateKey) -> Result<(), PhaseError> {
    let plain = read_certs(cluster)?;
    refuse_external_ca(&plain)?;
    print(&format!(
        "[upload-certs] Storing the certificates in Secret {:?} in the {NS:?} Namespace",
        copycerts::SECRET_NAME
    ));
    let stored = apply::get(client, &secrets(), Some(NS), copycerts::SECRET_NAME)
        .map_err(apply::context("cannot read Secret \"kubeadm-certs\""))?;
    if !stored.as_ref().is_some_and(|s| already_uploaded(s, &plain, key)) {
        let owner = token::create_owner_token(client)?;
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": copycerts::SECRET_NAME, "namespace": NS, "ownerReferences": [owner]},
            "type": "Opaque",
            "data": encrypt_all(&plain, key)?,
        });
        create_or_update(client, &secrets(), &secret, Update::Replace)
            .map_err(apply::context("error uploading certs"))?;
    }
    create_rbac(client)
}

fn create_rbac(client: &Client) -> Result<(), PhaseError> {
    let rbac = "rbac.authorization.k8s.io";
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": copycerts::ROLE_NAME, "namespace": NS},
        "rules": [{"apiGroups": [""], "resourceNames": [copycerts::SECRET_NAME], "resources": ["secrets"], "verbs": ["get"]}],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": copycerts::ROLE_NAME, "namespace": NS},
        "roleRef": {"apiGroup": rbac, "kind": "Role", "name": copycerts::ROLE_NAME},
        "subjects": [{"apiGroup": rbac, "kind": "Group", "name": NODE_BOOTSTRAP_GROUP}],
    });
    let role_type = resource(rbac, "v1", "Role", "roles", true);
    create_or_update(client, &role_type, &role, Update::Replace)?;
    let binding_type = resource(rbac, "v1", "RoleBinding", "rolebindings", true);
    create_or_update(client, &binding_type, &binding, Update::Replace)?;
    Ok(())
}

struct UploadCerts;

impl Plugin for UploadCerts {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info("upload-certs", "Upload certificates to kubeadm-certs");
        info.needs.files_read = vec![DEFAULT_CERTIFICATES_DIR.into()];
        info.needs.kube = kube_rules();
        info.needs.kube.insert(0, apply::admin_binding_rule());
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        if !ctx.config.upload_certs {
            print("[upload-certs] Skipping phase. Please see --upload-certs");
            return Ok(done());
        }
        let given = ctx
            .config
            .init
            .as_ref()
            .map(|i| i.certificate_key.clone())
            .unwrap_or_default();
        let key = if given.is_empty() {
            CertificateKey::generate().map_err(|e| PhaseError::Failed(e.to_string()))?
        } else {
            CertificateKey::from_hex(&given)
                .map_err(|e| PhaseError::InvalidConfig(format!("certificateKey (--certificate-key): {e}")))?
        };
        let client = apply::cluster()?;
        upload(&client, &ctx.cluster_configuration(), &key)?;
        if !ctx.config.skip_certificate_key_print {
            print("[upload-certs] Using certificate key:");
            print(&key.to_hex());
        }
        let mut findings = Findings::default();
        findings.output("certificate-key", key.to_hex());
        Ok(findings.into_report())
    }
}

export_plugin!(UploadCerts);
