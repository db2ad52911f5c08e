//! What the user reads: progress while the work runs, and the report at the end.

pub mod github;
pub mod progress;
pub mod report;
