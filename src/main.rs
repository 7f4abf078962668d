//! The `hydra-bottleneck` binary: the command line (`cli`) over the library's commands
//! (`hydra_bottleneck::app`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
