//! Configuration files: kubeadm's v1beta4 documents ([`kubeadm`]) and wasmadm's pipeline
//! ([`pipeline`]). Both report errors as `file:line:column: message`.

pub mod kubeadm;
pub mod pipeline;
pub mod settings_error;

/// serde_yaml's error as `path:line:column: message`, with `line_offset` added (for documents
/// cut out of a multi-document file).
pub fn yaml_error(path: &std::path::Path, e: &serde_yaml::Error, line_offset: usize) -> String {
    let mut message = e.to_string();
    match e.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(i) = message.find(&suffix) {
                message.replace_range(i..i + suffix.len(), "");
            }
            format!(
                "{}:{}:{}: {message}",
                path.display(),
                loc.line() + line_offset,
                loc.column()
            )
        }
        None => format!("{}: {message}", path.display()),
    }
}
