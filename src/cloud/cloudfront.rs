//! The CloudFront adapter: the `Cdn` interface on aws-sdk-cloudfront, translating requests and
//! errors and nothing more.

use aws_sdk_cloudfront::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use aws_sdk_cloudfront::Client;

use crate::cloud::cdn::{Cdn, CdnError};
use crate::decide::distribution::{DistributionFacts, OriginFacts};
use crate::decide::invalidation::InFlight;

pub struct CloudFront {
    client: Client,
}

impl CloudFront {
    pub fn new(client: Client) -> CloudFront {
        CloudFront { client }
    }
}

fn origins(list: Option<&aws_sdk_cloudfront::types::Origins>) -> Vec<OriginFacts> {
    list.map(|o| o.items())
        .unwrap_or_default()
        .iter()
        .map(|o| OriginFacts {
            domain_name: o.domain_name().to_string(),
            origin_path: o.origin_path().unwrap_or_default().to_string(),
        })
        .collect()
}

fn aliases(list: Option<&aws_sdk_cloudfront::types::Aliases>) -> Vec<String> {
    list.map(|a| a.items().to_vec()).unwrap_or_default()
}

impl Cdn for CloudFront {
    async fn distributions(&self) -> Result<Vec<DistributionFacts>, CdnError> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_distributions()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(e, None))?;
            let Some(list) = out.distribution_list() else {
                break;
            };
            all.extend(list.items().iter().map(|d| DistributionFacts {
                id: d.id().to_string(),
                domain_name: d.domain_name().to_string(),
                aliases: aliases(d.aliases()),
                origins: origins(d.origins()),
            }));
            match list.next_marker() {
                Some(next) if list.is_truncated() && !next.is_empty() => {
                    marker = Some(next.to_string())
                }
                _ => break,
            }
        }
        Ok(all)
    }

    async fn distribution(&self, id: &str) -> Result<DistributionFacts, CdnError> {
        let out = self
            .client
            .get_distribution()
            .id(id)
            .send()
            .await
            .map_err(|e| classify(e, Some(id)))?;
        let d = out
            .distribution()
            .ok_or_else(|| CdnError::Other(format!("GetDistribution {id} returned nothing")))?;
        let config = d.distribution_config();
        Ok(DistributionFacts {
            id: d.id().to_string(),
            domain_name: d.domain_name().to_string(),
            aliases: aliases(config.and_then(|c| c.aliases())),
            origins: origins(config.and_then(|c| c.origins())),
        })
    }

    async fn in_flight(&self, id: &str) -> Result<InFlight, CdnError> {
        let mut pending = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_invalidations()
                .distribution_id(id)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(e, Some(id)))?;
            let Some(list) = out.invalidation_list() else {
                break;
            };
            pending.extend(
                list.items()
                    .iter()
                    .filter(|i| !i.status().eq_ignore_ascii_case("completed"))
                    .map(|i| i.id().to_string()),
            );
            match list.next_marker() {
                Some(next) if list.is_truncated() && !next.is_empty() => {
                    marker = Some(next.to_string())
                }
                _ => break,
            }
        }
        let mut flight = InFlight::default();
        for inv in pending {
            let out = self
                .client
                .get_invalidation()
                .distribution_id(id)
                .id(&inv)
                .send()
                .await
                .map_err(|e| classify(e, Some(id)))?;
            let paths = out
                .invalidation()
                .and_then(|i| i.invalidation_batch())
                .and_then(|b| b.paths())
                .map(|p| p.items().to_vec())
                .unwrap_or_default();
            for p in paths {
                if p.ends_with('*') {
                    flight.wildcards += 1;
                } else {
                    flight.files += 1;
                }
            }
        }
        Ok(flight)
    }

    async fn invalidate(
        &self,
        id: &str,
        paths: &[String],
        caller_reference: &str,
    ) -> Result<String, CdnError> {
        let paths = Paths::builder()
            .quantity(i32::try_from(paths.len()).unwrap_or(i32::MAX))
            .set_items(Some(paths.to_vec()))
            .build()
            .map_err(|e| CdnError::Other(e.to_string()))?;
        let batch = InvalidationBatch::builder()
            .paths(paths)
            .caller_reference(caller_reference)
            .build()
            .map_err(|e| CdnError::Other(e.to_string()))?;
        let out = self
            .client
            .create_invalidation()
            .distribution_id(id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| classify(e, Some(id)))?;
        out.invalidation()
            .map(|i| i.id().to_string())
            .ok_or_else(|| CdnError::Other("CreateInvalidation returned no id".into()))
    }

    async fn status(&self, id: &str, invalidation: &str) -> Result<String, CdnError> {
        let out = self
            .client
            .get_invalidation()
            .distribution_id(id)
            .id(invalidation)
            .send()
            .await
            .map_err(|e| classify(e, Some(id)))?;
        Ok(out
            .invalidation()
            .map(|i| i.status().to_string())
            .unwrap_or_default())
    }
}

fn classify<E, R>(err: SdkError<E, R>, id: Option<&str>) -> CdnError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(se) = &err {
        let code = se.err().code().unwrap_or_default();
        let message = se.err().message().unwrap_or_default().to_string();
        return match code {
            "NoSuchDistribution" => CdnError::NoSuchDistribution(id.unwrap_or("?").to_string()),
            "AccessDenied" => CdnError::AccessDenied(message),
            "TooManyInvalidationsInProgress" => CdnError::TooManyInProgress,
            "InvalidArgument"
            | "BatchTooLarge"
            | "TooManyInvalidationPaths"
            | "InconsistentQuantities" => CdnError::Rejected(format!("{code}: {message}")),
            _ => CdnError::Other(format!("{code}: {message}")),
        };
    }
    CdnError::Other(DisplayErrorContext(&err).to_string())
}
