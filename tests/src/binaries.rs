// Included by `tests/build.rs` and `tests/src/cluster.rs` (`include!`), so the binaries the build
// checks for and the ones the tests run are one list.

/// The binaries the end-to-end tests run, in controller-runtime envtest's layout
/// (`$KUBEBUILDER_ASSETS/<binary>`).
pub const BINARIES: [&str; 6] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubeadm",
    "kubectl",
];
