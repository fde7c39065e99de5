//! `cargo bench --bench cluster [-- OPTIONS]`: the measurements of `keyquorum bench` (see
//! src/bench), for those who reach for cargo bench. OPTIONS are `keyquorum bench`'s, e.g.
//! `-- --nodes 3,5 --ops sign --quick`; the report goes to `--out` (default keyquorum-bench/).

use std::process::ExitCode;

use clap::Parser;
use keyquorum::bench::{markdown, run, BenchArgs, BenchError, Options};

#[derive(Parser)]
#[command(name = "cargo bench --bench cluster --")]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

fn main() -> ExitCode {
    // cargo passes `--bench` to every bench target; it means nothing here.
    let cli = Cli::parse_from(std::env::args().filter(|a| a != "--bench"));
    let opts = match Options::from_args(cli.bench) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let command = std::iter::once("cargo bench --bench cluster --".to_string())
        .chain(std::env::args().skip(1).filter(|a| a != "--bench"))
        .collect::<Vec<_>>()
        .join(" ");
    match run(&opts, command) {
        Ok(report) => {
            print!("{}", markdown::summary_table(&report));
            println!("\nreport in {}", opts.out.display());
            ExitCode::SUCCESS
        }
        Err(BenchError::Usage(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(BenchError::Failed(e)) => {
            eprintln!("error: benchmark failed: {e:#}");
            ExitCode::from(3)
        }
    }
}
