//! AWS set-up: the standard configuration chain (environment, profile, SSO, IMDS) with the
//! `--region`, `--profile` and `--endpoint-url` overrides, and the S3 and CloudFront clients.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::config::RequestChecksumCalculation;

use crate::cloud::bucket::BucketError;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// An endpoint set through `AWS_ENDPOINT_URL(_S3)`: S3-compatible stores want path-style.
    pub env_endpoint: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetupError {
    #[error("no AWS region is configured: pass --region, or set AWS_REGION")]
    NoRegion,
    #[error("{0}\n  hint: {hint}", hint = .0.hint(""))]
    Credentials(BucketError),
}

/// The clients of one run, built from one load of the configuration chain.
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
}

/// Builds the clients, failing early (before any request) when there are no credentials.
pub async fn clients(opts: &AwsOptions) -> Result<Clients, SetupError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(5));
    if let Some(profile) = &opts.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let custom_endpoint = opts.endpoint_url.is_some() || opts.env_endpoint;

    let mut s3 = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(custom_endpoint)
        // Every PUT carries the sha256 we already computed; letting the SDK add a CRC on top
        // would read each body twice and break streaming uploads over plain http.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
    // `--endpoint-url` names an S3-compatible store; CloudFront keeps its own endpoint.
    if let Some(url) = &opts.endpoint_url {
        s3 = s3.endpoint_url(url);
    }
    if shared.region().is_none() {
        if !custom_endpoint {
            return Err(SetupError::NoRegion);
        }
        // S3-compatible stores accept any region name in the signature.
        s3 = s3.region(Region::new("us-east-1"));
    }
    // CloudFront is global: its API lives in us-east-1 whatever the bucket's region.
    let cloudfront = aws_sdk_cloudfront::config::Builder::from(&shared)
        .region(Region::new("us-east-1"))
        .build();
    match shared.credentials_provider() {
        None => {
            return Err(SetupError::Credentials(BucketError::NoCredentials(
                String::new(),
            )))
        }
        Some(provider) => {
            if let Err(e) = provider.provide_credentials().await {
                // "Not loaded" means no source had any; anything else (an expired SSO session, a
                // broken profile) is worth quoting.
                let detail = match e {
                    CredentialsError::CredentialsNotLoaded(_) => String::new(),
                    other => one_line(&aws_sdk_s3::error::DisplayErrorContext(&other).to_string()),
                };
                return Err(SetupError::Credentials(BucketError::NoCredentials(detail)));
            }
        }
    }
    Ok(Clients {
        s3: aws_sdk_s3::Client::from_conf(s3.build()),
        cloudfront: aws_sdk_cloudfront::Client::from_conf(cloudfront),
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
