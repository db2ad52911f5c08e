//! cargo-cdn-deploy: deploy a static site to S3, uploading only what changed since the last
//! deploy, and invalidate exactly that on CloudFront. `run` is the whole command.

pub mod cancel;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod commands;
pub mod decide;
pub mod error;
pub mod local;
pub mod output;
pub mod settings;
pub mod state;

use std::ffi::OsString;
use std::process::ExitCode;

use crate::cli::Command;
use crate::error::{code, Error};
use crate::settings::{Environment, Settings};

/// Runs the tool on `argv` (program name first) and returns its exit code.
pub fn run<I, T>(argv: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let program = cli::program(std::env::var("CDN_DEPLOY_LAUNCHER").ok().as_deref());
    cli::set_program_name(program);
    // Known before parsing, so that even a usage error answers `--json` with a document.
    let json = argv.iter().skip(1).any(|a| a == "--json");
    let annotate = !json && std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
    let args = match cli::parse_as(argv, program) {
        Ok(args) => args,
        Err(e) => {
            let usage = e.use_stderr();
            if usage && json {
                let doc =
                    serde_json::json!({ "error": e.to_string().trim(), "exit_code": code::USAGE });
                println!("{doc}");
            }
            let _ = e.print();
            return if usage {
                ExitCode::from(code::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let env = Environment::sense(|k| std::env::var(k).ok());
    let cwd = std::env::current_dir().unwrap_or_default();
    let result = Settings::load(args, env, &vars, &cwd).and_then(|settings| {
        if settings.print_config {
            print!("{}", settings.render());
            return Ok(code::OK);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
        let result = runtime.block_on(async {
            match &settings.command {
                Command::Deploy => commands::deploy::deploy(&settings).await,
                Command::History => commands::history::history(&settings).await,
                Command::Rollback { to } => {
                    commands::rollback::rollback(&settings, to.as_deref()).await
                }
                Command::Verify { all } => commands::verify::command(&settings, *all).await,
                Command::Unlock => commands::unlock::unlock(&settings).await,
            }
        });
        // A scan still hashing when a set-up error ended the run is not waited for.
        runtime.shutdown_background();
        result
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            if json {
                let doc = serde_json::json!({ "error": e.to_string(), "exit_code": e.exit_code() });
                println!("{doc}");
            } else if annotate {
                println!("{}", output::github::annotation(&e.to_string()));
            }
            e.exit()
        }
    }
}
