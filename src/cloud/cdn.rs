//! The narrow interface to the CDN that a deploy needs (find distributions, see invalidations in
//! flight, invalidate, poll), in the tool's own terms, and its errors.

use std::future::Future;

use crate::decide::distribution::DistributionFacts;
use crate::decide::invalidation::InFlight;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CdnError {
    #[error("CloudFront distribution {0} does not exist, or these credentials cannot see it")]
    NoSuchDistribution(String),
    #[error("access denied by CloudFront{}", if .0.is_empty() { String::new() } else { format!(": {}", .0) })]
    AccessDenied(String),
    /// CloudFront's limit on invalidations in progress; retried with backoff.
    #[error("too many invalidations in progress")]
    TooManyInProgress,
    #[error("CloudFront rejected the invalidation: {0}")]
    Rejected(String),
    #[error("{0}")]
    Other(String),
}

impl CdnError {
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            CdnError::NoSuchDistribution(_) | CdnError::AccessDenied(_)
        )
    }

    pub fn hint(&self) -> &'static str {
        match self {
            CdnError::NoSuchDistribution(_) => "check the --distribution id (the E… id in the CloudFront console)",
            CdnError::AccessDenied(_) => "allow cloudfront:CreateInvalidation, GetInvalidation, ListInvalidations, GetDistribution and ListDistributions for these credentials",
            CdnError::TooManyInProgress => "wait for the invalidations in progress to complete, then run again",
            CdnError::Rejected(_) | CdnError::Other(_) => "run the deploy again: the paths stay recorded as not yet invalidated",
        }
    }
}

/// A CDN as the deploy sees it.
pub trait Cdn: Send + Sync {
    fn distributions(
        &self,
    ) -> impl Future<Output = Result<Vec<DistributionFacts>, CdnError>> + Send;

    fn distribution(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<DistributionFacts, CdnError>> + Send;

    /// Paths of this distribution's invalidations that are still in progress.
    fn in_flight(&self, id: &str) -> impl Future<Output = Result<InFlight, CdnError>> + Send;

    /// Creates an invalidation; returns its id.
    fn invalidate(
        &self,
        id: &str,
        paths: &[String],
        caller_reference: &str,
    ) -> impl Future<Output = Result<String, CdnError>> + Send;

    /// The invalidation's status as CloudFront spells it (`InProgress`, `Completed`).
    fn status(
        &self,
        id: &str,
        invalidation: &str,
    ) -> impl Future<Output = Result<String, CdnError>> + Send;
}
