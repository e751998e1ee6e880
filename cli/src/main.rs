//! The `quorate` binary.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = quorate_cli::Cli::parse();
    if !cli.command.is_long_running() {
        // Client output piped into `head` ends quietly, as other command-line tools do. Nodes
        // keep Rust's default (SIGPIPE ignored) so a closed pipe or socket never kills them.
        sigpipe::reset();
    }
    match quorate_cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
