//! The subcommands, each a pipeline from settings to an exit code.

pub mod deploy;
pub mod execute;
