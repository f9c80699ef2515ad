//! The default plugins, embedded in the binary at build time (see `build.rs`).

/// A plugin shipped inside wasmadm, referenced in a pipeline as `builtin:<name>`.
pub struct Builtin {
    pub name: &'static str,
    pub wasm: &'static [u8],
    /// sha256 of `wasm`, hex, computed by the build script.
    pub sha256: &'static str,
}

impl Builtin {
    /// sha256 of the component, hex: the digest a pipeline would pin for the same file.
    pub fn digest(&self) -> String {
        self.sha256.to_string()
    }
}

static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "preflight",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-preflight.wasm")),
        sha256: env!("WASMADM_PREFLIGHT_SHA256"),
    },
    Builtin {
        name: "certs",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-certs.wasm")),
        sha256: env!("WASMADM_CERTS_SHA256"),
    },
    Builtin {
        name: "kubeconfig",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-kubeconfig.wasm")),
        sha256: env!("WASMADM_KUBECONFIG_SHA256"),
    },
    Builtin {
        name: "etcd",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-etcd.wasm")),
        sha256: env!("WASMADM_ETCD_SHA256"),
    },
    Builtin {
        name: "control-plane",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-control-plane.wasm")),
        sha256: env!("WASMADM_CONTROL_PLANE_SHA256"),
    },
    Builtin {
        name: "kubelet-start",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-kubelet-start.wasm")),
        sha256: env!("WASMADM_KUBELET_START_SHA256"),
    },
    Builtin {
        name: "wait-control-plane",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-wait-control-plane.wasm")),
        sha256: env!("WASMADM_WAIT_CONTROL_PLANE_SHA256"),
    },
    Builtin {
        name: "upload-config",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-upload-config.wasm")),
        sha256: env!("WASMADM_UPLOAD_CONFIG_SHA256"),
    },
    Builtin {
        name: "upload-certs",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-upload-certs.wasm")),
        sha256: env!("WASMADM_UPLOAD_CERTS_SHA256"),
    },
    Builtin {
        name: "mark-control-plane",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-mark-control-plane.wasm")),
        sha256: env!("WASMADM_MARK_CONTROL_PLANE_SHA256"),
    },
    Builtin {
        name: "bootstrap-token",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-bootstrap-token.wasm")),
        sha256: env!("WASMADM_BOOTSTRAP_TOKEN_SHA256"),
    },
    Builtin {
        name: "kubelet-finalize",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-kubelet-finalize.wasm")),
        sha256: env!("WASMADM_KUBELET_FINALIZE_SHA256"),
    },
    Builtin {
        name: "addon",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-addon.wasm")),
        sha256: env!("WASMADM_ADDON_SHA256"),
    },
    Builtin {
        name: "show-join-command",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-show-join-command.wasm")),
        sha256: env!("WASMADM_SHOW_JOIN_COMMAND_SHA256"),
    },
];

/// The built-in plugin named `name`.
pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// Every built-in plugin, in pipeline order.
pub fn all() -> &'static [Builtin] {
    BUILTINS
}

/// The names of the built-in plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_time_digests_match_the_embedded_bytes() {
        for b in super::all() {
            assert_eq!(
                b.digest(),
                crate::runtime::engine::sha256_hex(b.wasm),
                "{}",
                b.name
            );
        }
    }
}
