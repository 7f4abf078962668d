//! The `hydra-bottleneck` binary: everything is in the library; see `cli.rs`.

fn main() -> std::process::ExitCode {
    hydra_bottleneck::cli::main()
}
