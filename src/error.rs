//! The tool's one error type, its messages (what went wrong, on which object, what to do) and
//! the documented exit codes.

use std::process::ExitCode;

use crate::cloud::aws::SetupError;
use crate::cloud::bucket::BucketError;
use crate::cloud::cdn::CdnError;
use crate::decide::distribution::ResolveError;
use crate::state::manifest::ManifestError;
use crate::decide::plan::PlanError;
use crate::local::scan::ScanError;
use crate::settings::sources::SourceError;

/// The exit codes, as documented in the README.
pub mod code {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const PARTIAL: u8 = 3;
    pub const CONFLICT: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const SIGINT: u8 = 130;
    pub const SIGTERM: u8 = 143;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("{what} s3://{bucket}/{key}: {source}\n  hint: {hint}", hint = source.hint(bucket))]
    Bucket {
        what: &'static str,
        bucket: String,
        key: String,
        source: BucketError,
    },
    #[error("the manifest s3://{bucket}/{key} cannot be used: {source}\n  hint: nothing was changed; inspect the object, or move it aside to start over (the next deploy then uploads everything and deletes nothing)")]
    Manifest {
        bucket: String,
        key: String,
        source: ManifestError,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Config(#[from] SourceError),
    #[error("{what} CloudFront {distribution}: {source}\n  hint: {hint}", hint = source.hint())]
    Cdn {
        what: &'static str,
        distribution: String,
        source: CdnError,
    },
    #[error("another deploy holds the lock s3://{bucket}/{key}: {holder}, started {started}, expires {expires}\n  hint: wait for it to finish and run again; if it died, the lock can be taken over after it expires, or delete the lock object")]
    Locked {
        bucket: String,
        key: String,
        holder: String,
        started: String,
        expires: String,
    },
    #[error("the manifest s3://{bucket}/{key} was changed by another deploy while this one ran\n  hint: run the deploy again; it compares against the newest manifest")]
    Conflict { bucket: String, key: String },
    #[error("interrupted")]
    Interrupted(u8),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => code::USAGE,
            Error::Scan(e) if e.is_safety_refusal() => code::REFUSED,
            Error::Scan(e) if e.is_io() => code::FAILURE,
            Error::Scan(_) => code::USAGE,
            Error::Setup(_) => code::USAGE,
            Error::Bucket { source, .. } if source.is_setup() => code::USAGE,
            Error::Bucket {
                source: BucketError::PreconditionFailed,
                ..
            } => code::CONFLICT,
            Error::Bucket { .. } => code::FAILURE,
            Error::Manifest { .. } => code::REFUSED,
            Error::Plan(PlanError::TooManyDeletes { .. }) => code::REFUSED,
            Error::Resolve(_) | Error::Config(_) => code::USAGE,
            Error::Cdn { source, .. } if source.is_setup() => code::USAGE,
            Error::Cdn { .. } => code::FAILURE,
            Error::Locked { .. } | Error::Conflict { .. } => code::CONFLICT,
            Error::Interrupted(c) => *c,
        }
    }

    pub fn exit(&self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}
