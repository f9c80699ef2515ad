//! The `wasmadm` command line, built inside the test crate so that its integration tests run the
//! current CLI as a process (`env!("CARGO_BIN_EXE_wasmadm-under-test")`): in a network namespace,
//! with its real console output, as an operator runs it.

fn main() -> std::process::ExitCode {
    wasmadm::cli::main()
}
