//! The tool's one error type, its messages (what went wrong, on which object, what to do) and
//! the documented exit codes.

use std::process::ExitCode;

use crate::cloud::aws::SetupError;
use crate::cloud::bucket::BucketError;
use crate::cloud::cdn::CdnError;
use crate::decide::distribution::ResolveError;
use crate::decide::plan::PlanError;
use crate::local::scan::ScanError;
use crate::settings::sources::SourceError;
use crate::state::format::ManifestError;

/// The exit codes, as documented in the README.
pub mod code {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const PARTIAL: u8 = 3;
    pub const CONFLICT: u8 = 4;
    pub const REFUSED: u8 = 5;
    /// `verify` (or `--verify`) found URLs that CloudFront serves stale.
    pub const STALE: u8 = 6;
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
    #[error("{what} s3://{bucket}/{key}: {source}\n  hint: {hint}", hint = source.hint(bucket, crate::cli::program_name()))]
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
    #[error("another deploy holds s3://{bucket}/{key}: {}, started {} ({} ago), lock expires {}\n  hint: wait for it to finish and run again (or pass --lock-wait 2m); if it died, its lock lapses by itself at the expiry, or remove it now with `{} unlock`", held.holder, held.started, held.age, held.expires, crate::cli::program_name())]
    Locked {
        bucket: String,
        key: String,
        held: Box<Held>,
    },
    #[error("the manifest s3://{bucket}/{key} was changed by another deploy while this one ran\n  hint: run the deploy again; it compares against the newest manifest")]
    Conflict { bucket: String, key: String },
    #[error("{}", if *taken {
        format!("the deploy lock in s3://{bucket}/{key} was taken over by another deploy after it expired; this deploy stopped before its next write\n  hint: the manifest records what may have changed, so the next deploy repairs it; run again once the other deploy is done")
    } else {
        format!("the deploy lock in s3://{bucket}/{key} could not be renewed before it expired (S3 did not answer); this deploy stopped before its next write\n  hint: check the network, then run again: the manifest records what may have changed")
    })]
    LockLost {
        bucket: String,
        key: String,
        taken: bool,
    },
    /// A safety refusal with its own message (a project folder, a broken reference with
    /// `--strict`): nothing was written.
    #[error("{0}")]
    Refused(String),
    /// What `verify` found stale, already reported.
    #[error("{0}")]
    Stale(String),
    #[error("interrupted")]
    Interrupted(u8),
}

/// Who holds a lock, for [`Error::Locked`].
#[derive(Debug)]
pub struct Held {
    pub holder: String,
    pub started: String,
    pub age: String,
    pub expires: String,
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
            Error::Plan(_) => code::REFUSED,
            Error::Resolve(_) | Error::Config(_) => code::USAGE,
            Error::Cdn { source, .. } if source.is_setup() => code::USAGE,
            Error::Cdn { .. } => code::FAILURE,
            Error::Locked { .. } | Error::Conflict { .. } => code::CONFLICT,
            Error::LockLost { taken: true, .. } => code::CONFLICT,
            Error::LockLost { taken: false, .. } => code::FAILURE,
            Error::Refused(_) => code::REFUSED,
            Error::Stale(_) => code::STALE,
            Error::Interrupted(c) => *c,
        }
    }

    pub fn exit(&self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}
