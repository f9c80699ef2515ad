//! The `wasmadm` binary: the command line is [`wasmadm::cli`].

fn main() -> std::process::ExitCode {
    wasmadm::cli::main()
}
