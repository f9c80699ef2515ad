//! The default plugins, embedded in the binary at build time (see `build.rs`).

/// A plugin shipped inside wasmadm, referenced in a pipeline as `builtin:<name>`.
pub struct Builtin {
    pub name: &'static str,
    pub wasm: &'static [u8],
}

impl Builtin {
    /// sha256 of the component, hex: the digest a pipeline would pin for the same file.
    pub fn digest(&self) -> String {
        crate::runtime::engine::sha256_hex(self.wasm)
    }
}

static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "preflight",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-preflight.wasm")),
    },
    Builtin {
        name: "certs",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-certs.wasm")),
    },
    Builtin {
        name: "kubeconfig",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-kubeconfig.wasm")),
    },
    Builtin {
        name: "etcd",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-etcd.wasm")),
    },
    Builtin {
        name: "control-plane",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-control-plane.wasm")),
    },
    Builtin {
        name: "kubelet-start",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-kubelet-start.wasm")),
    },
    Builtin {
        name: "wait-control-plane",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-wait-control-plane.wasm")),
    },
    Builtin {
        name: "upload-config",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-upload-config.wasm")),
    },
    Builtin {
        name: "upload-certs",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-upload-certs.wasm")),
    },
    Builtin {
        name: "mark-control-plane",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-mark-control-plane.wasm")),
    },
    Builtin {
        name: "bootstrap-token",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-bootstrap-token.wasm")),
    },
    Builtin {
        name: "kubelet-finalize",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-kubelet-finalize.wasm")),
    },
    Builtin {
        name: "addon",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-addon.wasm")),
    },
    Builtin {
        name: "show-join-command",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/wasmadm-show-join-command.wasm")),
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
