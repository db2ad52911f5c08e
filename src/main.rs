//! The `cargo-cdn-deploy` binary: everything lives in the library so tests can call it.

fn main() -> std::process::ExitCode {
    cdn_deploy::run(std::env::args_os())
}
