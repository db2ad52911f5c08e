//! AWS set-up: the standard configuration chain (environment, profile, SSO, IMDS) with the
//! `--region`, `--profile`, `--endpoint-url` and `--timeout` overrides, and the S3 and
//! CloudFront clients. Everything the SDK would otherwise panic on or report as a dump is
//! checked first and said in one line.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::config::RequestChecksumCalculation;

use crate::cloud::errors::chain_text;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// An endpoint set through `AWS_ENDPOINT_URL(_S3)`: S3-compatible stores want path-style.
    pub env_endpoint: bool,
    /// A request unanswered this long is retried; three attempts in all.
    pub timeout: Duration,
}

/// Attempts per request: the first and two retries.
pub const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetupError {
    #[error("no AWS region is configured: pass --region, or set AWS_REGION")]
    NoRegion,
    #[error("{origin} {region:?} is not an AWS region name (like us-east-1 or eu-central-1)")]
    BadRegion { region: String, origin: String },
    #[error("{name} {why}: fix the variable (as pasted into a CI secret, a value often carries a trailing newline)")]
    BadVariable { name: String, why: &'static str },
    #[error("the AWS profile {name:?} ({origin}) is not defined in {files}\n  hint: list the profiles with `aws configure list-profiles`, or drop {origin} to use the environment's credentials")]
    NoSuchProfile {
        name: String,
        origin: String,
        files: String,
    },
    #[error("no AWS credentials found{}\n  hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --profile, or run `aws sso login`", detail(.0))]
    NoCredentials(String),
    #[error("the AWS credentials cannot be loaded: {0}\n  hint: an SSO session may need `aws sso login`; check the profile in ~/.aws/config")]
    Credentials(String),
}

fn detail(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" ({s})")
    }
}

/// The clients of one run, built from one load of the configuration chain.
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
    /// Where S3 requests go, for messages.
    pub s3_endpoint: String,
}

/// Checks the AWS variables of the environment that the SDK would take as they are: a
/// credential with whitespace in it (a pasted secret with its newline) makes the SDK panic
/// while signing.
pub fn check_env(var: &dyn Fn(&str) -> Option<String>) -> Result<(), SetupError> {
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        let Some(value) = var(name) else { continue };
        let why = if value.is_empty() {
            Some("is set but empty")
        } else if value.contains(['\n', '\r']) {
            Some("contains a line break")
        } else if value.chars().any(char::is_whitespace) {
            Some("contains whitespace")
        } else if value.chars().any(|c| c.is_control() || !c.is_ascii()) {
            Some("contains a character that cannot go in a request header")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(SetupError::BadVariable {
                name: name.to_string(),
                why,
            });
        }
    }
    Ok(())
}

/// Whether `region` can be an AWS region name. S3-compatible stores accept other names, so
/// only the characters are checked for them.
pub fn check_region(region: &str, custom_endpoint: bool, origin: &str) -> Result<(), SetupError> {
    let chars_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    let parts: Vec<&str> = region.split('-').collect();
    let aws_shape = parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()));
    if chars_ok && (custom_endpoint || aws_shape) {
        Ok(())
    } else {
        Err(SetupError::BadRegion {
            region: region.to_string(),
            origin: origin.to_string(),
        })
    }
}

/// A named profile must exist, even when the environment has credentials (the AWS CLI says so
/// too): a typo would otherwise deploy with other credentials than meant.
async fn check_profile(name: &str, origin: &str) -> Result<(), SetupError> {
    if name == "default" {
        return Ok(());
    }
    let fs = aws_types::os_shim_internal::Fs::real();
    let env = aws_types::os_shim_internal::Env::real();
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let set = aws_config::profile::load(&fs, &env, &files, None).await;
    let known = match &set {
        Ok(set) => set.get_profile(name).is_some(),
        Err(_) => false,
    };
    if known {
        return Ok(());
    }
    Err(SetupError::NoSuchProfile {
        name: name.to_string(),
        origin: origin.to_string(),
        files:
            "~/.aws/config or ~/.aws/credentials (or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE)"
                .into(),
    })
}

/// Builds the clients, failing early (before any request) on a bad setting or no credentials.
pub async fn clients(opts: &AwsOptions) -> Result<Clients, SetupError> {
    check_env(&|k| std::env::var(k).ok())?;
    let custom_endpoint = opts.endpoint_url.is_some() || opts.env_endpoint;
    if let Some(r) = &opts.region {
        check_region(r, custom_endpoint, "--region")?;
    }
    let env_profile = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    match (&opts.profile, &env_profile) {
        (Some(p), _) => check_profile(p, "--profile").await?,
        (None, Some(p)) => check_profile(p, "AWS_PROFILE").await?,
        (None, None) => {}
    }
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
        .read_timeout(opts.timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(ATTEMPTS))
        .timeout_config(timeouts);
    if let Some(profile) = &opts.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    if let (None, Some(r)) = (&opts.region, shared.region()) {
        check_region(
            r.as_ref(),
            custom_endpoint,
            "the configured region (AWS_REGION or the profile)",
        )?;
    }

    let mut s3 = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(custom_endpoint)
        // Every PUT carries the sha256 we already computed; letting the SDK add a CRC on top
        // would read each body twice and break streaming uploads over plain http.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
    // `--endpoint-url` names an S3-compatible store; CloudFront keeps its own endpoint.
    if let Some(url) = &opts.endpoint_url {
        s3 = s3.endpoint_url(url);
    }
    let region = match shared.region() {
        Some(r) => r.to_string(),
        None if custom_endpoint => {
            // S3-compatible stores accept any region name in the signature.
            s3 = s3.region(Region::new("us-east-1"));
            "us-east-1".to_string()
        }
        None => return Err(SetupError::NoRegion),
    };
    let s3_endpoint = opts
        .endpoint_url
        .clone()
        .or_else(|| {
            std::env::var("AWS_ENDPOINT_URL_S3")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .or_else(|| {
            std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| format!("S3 in {region}"));
    // CloudFront is global: its API lives in us-east-1 whatever the bucket's region.
    let cloudfront = aws_sdk_cloudfront::config::Builder::from(&shared)
        .region(Region::new("us-east-1"))
        .build();
    match shared.credentials_provider() {
        None => return Err(SetupError::NoCredentials(String::new())),
        Some(provider) => {
            if let Err(e) = provider.provide_credentials().await {
                // "Not loaded" means no source had any; anything else (an expired SSO session, a
                // broken profile) is worth quoting.
                return Err(match e {
                    CredentialsError::CredentialsNotLoaded(_) => {
                        SetupError::NoCredentials(String::new())
                    }
                    other => SetupError::Credentials(chain_text(&other)),
                });
            }
        }
    }
    Ok(Clients {
        s3: aws_sdk_s3::Client::from_conf(s3.build()),
        cloudfront: aws_sdk_cloudfront::Client::from_conf(cloudfront),
        s3_endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_credentials_are_checked() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(check_env(&env(&[("AWS_ACCESS_KEY_ID", "AKIA123")])), Ok(()));
        assert_eq!(check_env(&env(&[])), Ok(()));
        for (value, why) in [
            ("AKIA123\n", "contains a line break"),
            ("", "is set but empty"),
            ("AKIA 123", "contains whitespace"),
            (
                "AKIAé",
                "contains a character that cannot go in a request header",
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(vec![("AWS_ACCESS_KEY_ID", value)].into_boxed_slice());
            let err = check_env(&env(pairs)).unwrap_err();
            assert_eq!(
                err,
                SetupError::BadVariable {
                    name: "AWS_ACCESS_KEY_ID".into(),
                    why
                }
            );
        }
        let err = check_env(&env(&[("AWS_SECRET_ACCESS_KEY", "s\r\n")])).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("AWS_SECRET_ACCESS_KEY contains a line break"));
    }

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "eu-central-1",
            "us-gov-west-1",
            "ap-southeast-3",
            "cn-north-1",
        ] {
            assert_eq!(check_region(ok, false, "--region"), Ok(()), "{ok}");
        }
        for bad in [
            "us_east_1",
            "US-EAST-1",
            "useast1",
            "us-east-",
            "eu-central",
            "garage",
            "",
        ] {
            assert!(check_region(bad, false, "--region").is_err(), "{bad}");
        }
        assert_eq!(check_region("garage", true, "--region"), Ok(()));
        assert!(check_region("bad region", true, "--region").is_err());
    }
}
