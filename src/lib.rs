//! cargo-cdn-deploy: deploy a static site to S3, uploading only what changed since the last
//! deploy, and invalidate exactly that on CloudFront. `run` is the whole command.

pub mod cli;
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

use crate::settings::{Environment, Settings};
use crate::error::{code, Error};

/// Runs the tool on `argv` (program name first) and returns its exit code.
pub fn run<I, T>(argv: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let program = cli::program(std::env::var("CDN_DEPLOY_LAUNCHER").ok().as_deref());
    let args = match cli::parse_as(argv, program) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(code::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let json = args.json;
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
        runtime.block_on(commands::deploy::deploy(&settings))
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            if json {
                let doc = serde_json::json!({ "error": e.to_string(), "exit_code": e.exit_code() });
                println!("{doc}");
            }
            e.exit()
        }
    }
}
