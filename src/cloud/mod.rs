//! The services a deploy talks to, behind narrow traits in the tool's own terms (`Bucket`,
//! `Cdn`), and their AWS adapters, which translate and make no decisions.

pub mod aws;
pub mod bucket;
pub mod cdn;
pub mod cloudfront;
pub mod errors;
pub mod s3;
