//! What the host knows about API resource types, and the API server's rules for the strings a
//! request is built from.
//!
//! A plugin names a type with a `resource-type` record, but whether that type is namespaced, and
//! which kind goes with which plural, is a fact of the API, never the plugin's word: the host
//! takes it from [`KNOWN`] (or, for a type not in it, from the real API server's discovery) and
//! refuses a record that disagrees. Names, namespaces, versions and label selectors are checked
//! here with the API server's own rules before any request is built, so none of them can add a
//! path segment, a query or a subresource to a URL.

use super::{ApiError, ApiErrorCode, ResourceType};

/// The largest object (or patch) the API server accepts: its request body limit.
pub const MAX_OBJECT_BYTES: usize = 3 << 20;

/// How the API server validates object names of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253 characters.
    Subdomain,
    /// RFC 1123 label (namespaces): lower-case alphanumerics and `-`, at most 63 characters.
    Label,
    /// Any path segment (RBAC objects, e.g. `system:node`): no `/` or `%`, not `.` or `..`;
    /// wasmadm also refuses `?`, `#`, whitespace and control characters.
    PathSegment,
}

/// A resource type as the API serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub group: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Versions the API server serves for the type.
    pub versions: &'static [&'static str],
    pub names: NameRule,
}

const fn known(
    group: &'static str,
    versions: &'static [&'static str],
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    names: NameRule,
) -> Known {
    Known {
        group,
        plural,
        kind,
        namespaced,
        versions,
        names,
    }
}

const V1: &[&str] = &["v1"];
const RBAC: &str = "rbac.authorization.k8s.io";

/// The built-in types of the Kubernetes versions wasmadm targets (v1.36), as discovery reports
/// them. Anything else needs a real API server that serves it.
pub const KNOWN: &[Known] = &[
    known("", V1, "ConfigMap", "configmaps", true, NameRule::Subdomain),
    known("", V1, "Secret", "secrets", true, NameRule::Subdomain),
    known(
        "",
        V1,
        "ServiceAccount",
        "serviceaccounts",
        true,
        NameRule::Subdomain,
    ),
    known("", V1, "Service", "services", true, NameRule::Label),
    known("", V1, "Endpoints", "endpoints", true, NameRule::Subdomain),
    known("", V1, "Pod", "pods", true, NameRule::Subdomain),
    known("", V1, "Event", "events", true, NameRule::Subdomain),
    known(
        "",
        V1,
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        NameRule::Subdomain,
    ),
    known("", V1, "Node", "nodes", false, NameRule::Subdomain),
    known("", V1, "Namespace", "namespaces", false, NameRule::Label),
    known(
        "",
        V1,
        "PersistentVolume",
        "persistentvolumes",
        false,
        NameRule::Subdomain,
    ),
    known("apps", V1, "Deployment", "deployments", true, NameRule::Subdomain),
    known("apps", V1, "DaemonSet", "daemonsets", true, NameRule::Subdomain),
    known(
        "apps",
        V1,
        "StatefulSet",
        "statefulsets",
        true,
        NameRule::Subdomain,
    ),
    known("apps", V1, "ReplicaSet", "replicasets", true, NameRule::Subdomain),
    known("batch", V1, "Job", "jobs", true, NameRule::Subdomain),
    known("batch", V1, "CronJob", "cronjobs", true, NameRule::Subdomain),
    known(RBAC, V1, "Role", "roles", true, NameRule::PathSegment),
    known(
        RBAC,
        V1,
        "RoleBinding",
        "rolebindings",
        true,
        NameRule::PathSegment,
    ),
    known(
        RBAC,
        V1,
        "ClusterRole",
        "clusterroles",
        false,
        NameRule::PathSegment,
    ),
    known(
        RBAC,
        V1,
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        NameRule::PathSegment,
    ),
    known(
        "coordination.k8s.io",
        V1,
        "Lease",
        "leases",
        true,
        NameRule::Subdomain,
    ),
    known(
        "certificates.k8s.io",
        V1,
        "CertificateSigningRequest",
        "certificatesigningrequests",
        false,
        NameRule::Subdomain,
    ),
    known(
        "discovery.k8s.io",
        V1,
        "EndpointSlice",
        "endpointslices",
        true,
        NameRule::Subdomain,
    ),
    known(
        "policy",
        V1,
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        NameRule::Subdomain,
    ),
    known(
        "networking.k8s.io",
        V1,
        "NetworkPolicy",
        "networkpolicies",
        true,
        NameRule::Subdomain,
    ),
    known(
        "networking.k8s.io",
        V1,
        "Ingress",
        "ingresses",
        true,
        NameRule::Subdomain,
    ),
    known(
        "storage.k8s.io",
        V1,
        "StorageClass",
        "storageclasses",
        false,
        NameRule::Subdomain,
    ),
    known(
        "scheduling.k8s.io",
        V1,
        "PriorityClass",
        "priorityclasses",
        false,
        NameRule::Subdomain,
    ),
    known(
        "apiextensions.k8s.io",
        V1,
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        NameRule::Subdomain,
    ),
    known(
        "admissionregistration.k8s.io",
        V1,
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
        NameRule::Subdomain,
    ),
    known(
        "admissionregistration.k8s.io",
        V1,
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        NameRule::Subdomain,
    ),
];

/// The built-in type with this group and plural.
pub fn lookup(group: &str, plural: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.group == group && k.plural == plural)
}

/// The naming rule of a type (custom resources use subdomains).
pub fn name_rule(ty: &ResourceType) -> NameRule {
    lookup(&ty.group, &ty.plural).map_or(NameRule::Subdomain, |k| k.names)
}

/// A type's facts as served by an API server's discovery (`/api/v1`, `/apis/<group>/<version>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub kind: String,
    pub namespaced: bool,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ApiErrorCode::Invalid, 0, message)
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An API version as Kubernetes spells them: `v1`, `v1beta1`, `v2alpha3`.
fn is_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || rest.starts_with('0') {
        return false;
    }
    let tail = &rest[digits..];
    tail.is_empty()
        || ["alpha", "beta"].iter().any(|stage| {
            tail.strip_prefix(stage).is_some_and(|n| {
                !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())
            })
        })
}

/// Checks the strings of a `resource-type` record: they become URL path segments.
pub fn check_type_syntax(ty: &ResourceType) -> Result<(), ApiError> {
    if !ty.group.is_empty() && !kubeadm_config::validate::is_dns1123_subdomain(&ty.group) {
        return Err(invalid(format!(
            "kube: API group {:?} is not a valid group name (a DNS subdomain such as \"apps\", or \
             \"\" for the core group)",
            ty.group
        )));
    }
    if !is_version(&ty.version) {
        return Err(invalid(format!(
            "kube: API version {:?} is not a Kubernetes version (v1, v1beta1, ...)",
            ty.version
        )));
    }
    if !is_label(&ty.plural) {
        return Err(invalid(format!(
            "kube: resource {:?} is not a plural resource name (lower-case, e.g. \"configmaps\"; \
             subresources such as \"nodes/status\" are not available to plugins)",
            ty.plural
        )));
    }
    if ty.kind.is_empty()
        || ty.kind.len() > 63
        || !ty.kind.starts_with(|c: char| c.is_ascii_alphabetic())
        || !ty.kind.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(invalid(format!(
            "kube: kind {:?} is not a valid kind name",
            ty.kind
        )));
    }
    Ok(())
}

/// The type as the API serves it: the plugin's record must agree with the facts (`found`, from
/// [`KNOWN`] or discovery) on kind and scope; the version must be one the API serves.
pub fn reconcile(ty: &ResourceType, kind: &str, namespaced: bool) -> Result<ResourceType, ApiError> {
    let what = ty.qualified_plural();
    if ty.kind != kind {
        return Err(invalid(format!(
            "kube: the kind of {what} is {kind:?}, not {:?} as the plugin's resource-type says",
            ty.kind
        )));
    }
    if ty.namespaced != namespaced {
        let scope = |n: bool| if n { "namespaced" } else { "cluster-scoped" };
        return Err(invalid(format!(
            "kube: {what} is {}, not {} as the plugin's resource-type says",
            scope(namespaced),
            scope(ty.namespaced)
        )));
    }
    Ok(ty.clone())
}

/// Checks a known type's version.
pub fn check_version(ty: &ResourceType, known: &Known) -> Result<(), ApiError> {
    if known.versions.contains(&ty.version.as_str()) {
        return Ok(());
    }
    Err(invalid(format!(
        "kube: {} is served as version {}, not {:?}",
        ty.qualified_plural(),
        known.versions.join(", "),
        ty.version
    )))
}

/// Checks a namespace name (an RFC 1123 label).
pub fn check_namespace(ns: &str) -> Result<(), ApiError> {
    if is_label(ns) {
        return Ok(());
    }
    Err(invalid(format!(
        "kube: namespace {ns:?} is not a valid namespace name (lower-case letters, digits and '-', \
         at most 63 characters)"
    )))
}

/// Checks an object name against the API server's rule for the type.
pub fn check_name(ty: &ResourceType, name: &str) -> Result<(), ApiError> {
    let rule = name_rule(ty);
    let ok = match rule {
        NameRule::Subdomain => kubeadm_config::validate::is_dns1123_subdomain(name),
        NameRule::Label => is_label(name),
        NameRule::PathSegment => {
            !name.is_empty()
                && name.len() <= 253
                && name != "."
                && name != ".."
                && !name
                    .chars()
                    .any(|c| matches!(c, '/' | '%' | '?' | '#') || c.is_whitespace() || c.is_control())
        }
    };
    if ok {
        return Ok(());
    }
    let rule = match rule {
        NameRule::Subdomain => "lower-case letters, digits, '-' and '.', at most 253 characters",
        NameRule::Label => "lower-case letters, digits and '-', at most 63 characters",
        NameRule::PathSegment => "no '/', '%', '?', '#' or whitespace, not \".\" or \"..\"",
    };
    Err(invalid(format!(
        "kube: {name:?} is not a valid name for {} ({rule})",
        ty.qualified_plural()
    )))
}

/// Checks a label selector: equality and set terms over label keys and values
/// (`a=b,c!=d,e in (f,g),!h`), nothing that could reach beyond the query parameter.
pub fn check_selector(selector: &str) -> Result<(), ApiError> {
    let ok = selector.len() <= 4096
        && selector.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | '=' | '!' | ',' | '(' | ')' | ' ')
        });
    if ok {
        return Ok(());
    }
    Err(invalid(format!(
        "kube: label selector {selector:?} is not valid (keys and values of letters, digits, '-', \
         '_', '.', '/' joined by '=', '==', '!=', 'in', 'notin', '!' and ',')"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_change_the_url_are_refused() {
        let cm = ResourceType::v1("", "ConfigMap", "configmaps", true);
        let role = ResourceType::v1(RBAC, "ClusterRole", "clusterroles", false);
        for bad in [
            "a/b",
            "x/../../secrets/admin-token",
            "k?watch=true",
            "a#b",
            "a%2fb",
            "..",
            "A",
            "a b",
            "",
        ] {
            assert!(check_name(&cm, bad).is_err(), "{bad}");
            assert!(check_name(&role, bad).is_err() || bad == "A", "{bad}");
        }
        assert!(check_name(&cm, "kubeadm-config").is_ok());
        assert!(check_name(&role, "system:node").is_ok());
        assert!(check_name(&cm, "system:node").is_err());
        assert!(check_namespace("kube-system").is_ok());
        assert!(check_namespace("kube-system/secrets").is_err());
    }

    #[test]
    fn type_strings_are_checked() {
        let mut ty = ResourceType::v1("", "ConfigMap", "configmaps", true);
        assert!(check_type_syntax(&ty).is_ok());
        for v in ["v1beta1", "v2alpha3", "v10"] {
            ty.version = v.into();
            assert!(check_type_syntax(&ty).is_ok(), "{v}");
        }
        for v in ["v1/../../x", "1", "v0", "v1beta", "v1?watch=1"] {
            ty.version = v.into();
            assert!(check_type_syntax(&ty).is_err(), "{v}");
        }
        ty.version = "v1".into();
        ty.plural = "nodes/status".into();
        assert!(check_type_syntax(&ty).is_err());
    }

    #[test]
    fn the_table_decides_the_scope() {
        let lying = ResourceType::v1("", "Secret", "secrets", false);
        let err = reconcile(&lying, "Secret", true).expect_err("refused");
        assert!(
            err.message.contains("secrets is namespaced, not cluster-scoped"),
            "{}",
            err.message
        );
        let wrong_kind = ResourceType::v1("", "ConfigMap", "secrets", true);
        assert!(reconcile(&wrong_kind, "Secret", true).is_err());
        assert!(lookup("", "secrets").is_some_and(|k| k.namespaced));
    }

    #[test]
    fn selectors() {
        assert!(check_selector("app=x,tier!=db,env in (a,b),!legacy,k8s.io/name==y").is_ok());
        assert!(check_selector("a=b&watch=true").is_err());
        assert!(check_selector("a=b#x").is_err());
    }
}
