//! The `quorate` binary.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = quorate_node::cli::Cli::parse();
    match quorate_node::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
