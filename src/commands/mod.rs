//! The subcommands, each a pipeline from settings to an exit code.

pub mod deploy;
pub mod execute;
pub mod history;
pub mod lease;
pub mod remote;
pub mod rollback;
pub mod signals;
pub mod unlock;
pub mod verify;
