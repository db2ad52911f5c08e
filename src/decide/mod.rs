//! Every decision of a deploy, as pure functions over owned data: what to upload, keep, retire
//! or delete, which CloudFront paths to invalidate, which distribution serves the bucket.

pub mod distribution;
pub mod invalidation;
pub mod plan;
pub mod rollback;
