//! Which CloudFront distributions serve the deploy: matching `--domain` against aliases, reading
//! the bucket and OriginPath out of a distribution's S3 origins. Pure: works on facts the
//! CloudFront adapter fetched.

use crate::settings::normalize_prefix;

/// What the deploy needs to know about a distribution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DistributionFacts {
    pub id: String,
    /// `d111111abcdef8.cloudfront.net`
    pub domain_name: String,
    pub aliases: Vec<String>,
    pub origins: Vec<OriginFacts>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginFacts {
    pub domain_name: String,
    /// "" or `/path` as CloudFront stores it.
    pub origin_path: String,
}

/// A distribution that serves this deploy's bucket, with the OriginPath its keys sit under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serving {
    pub id: String,
    pub bucket: String,
    /// "" or `/path`.
    pub origin_path: String,
    /// The host visitors reach it by: its first alias, else its `*.cloudfront.net` name.
    pub host: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("no CloudFront distribution has the alias {host:?}{}", candidates(.known))]
    NoSuchDomain { host: String, known: Vec<String> },
    #[error("{host:?} matches several CloudFront distributions ({}): pass --distribution ID instead", .ids.join(", "))]
    Ambiguous { host: String, ids: Vec<String> },
    #[error("CloudFront distribution {id} has no S3 origin{}: its origins are {}", match .bucket { Some(b) => format!(" for bucket {b:?}"), None => String::new() }, list(.origins))]
    NoS3Origin {
        id: String,
        bucket: Option<String>,
        origins: Vec<String>,
    },
    #[error("CloudFront distribution {id} serves several buckets ({}): pass --bucket to say which one this deploy is for", .buckets.join(", "))]
    SeveralBuckets { id: String, buckets: Vec<String> },
    #[error("the distributions serve different buckets ({}); deploy each bucket separately", .buckets.join(", "))]
    DifferentBuckets { buckets: Vec<String> },
    #[error("the deploy prefix {prefix:?} is outside the OriginPath {origin_path:?} of CloudFront distribution {id}: nothing deployed there would be served by it")]
    OutsideOriginPath {
        id: String,
        prefix: String,
        origin_path: String,
    },
}

fn candidates(known: &[String]) -> String {
    if known.is_empty() {
        " (this account has no distribution with an alias)".into()
    } else {
        format!("; known aliases: {}", known.join(", "))
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The bucket an origin domain names, for every S3 endpoint form: REST (`b.s3.amazonaws.com`,
/// `b.s3.us-west-2.amazonaws.com`, `b.s3-us-west-2.amazonaws.com`, dualstack), website
/// (`b.s3-website-us-east-1.amazonaws.com`, `b.s3-website.eu-central-1.amazonaws.com`), and
/// the China partition. `None` for any other origin.
pub fn bucket_of_origin(domain: &str) -> Option<String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let host = domain
        .strip_suffix(".amazonaws.com")
        .or_else(|| domain.strip_suffix(".amazonaws.com.cn"))?;
    // The bucket is everything before the last label that starts the S3 endpoint; bucket names
    // may themselves contain dots, so search from the right.
    let labels: Vec<&str> = host.split('.').collect();
    let endpoint_start = labels.iter().rposition(|l| {
        *l == "s3" || l.starts_with("s3-") || *l == "s3-website" || l.starts_with("s3-website-")
    })?;
    // `s3.dualstack.region` and `s3-website.region` put more labels after the endpoint label,
    // so the first label that looks like an S3 endpoint is the one that ends the bucket name.
    let first = labels[..=endpoint_start]
        .iter()
        .position(|l| *l == "s3" || l.starts_with("s3-"))?;
    if first == 0 {
        return None;
    }
    Some(labels[..first].join("."))
}

/// Finds the distribution whose alias (or own domain name) is `host`. Wildcard aliases
/// (`*.example.com`) match one label, as in CloudFront.
pub fn by_domain<'a>(
    host: &str,
    all: &'a [DistributionFacts],
) -> Result<&'a DistributionFacts, ResolveError> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let exact: Vec<&DistributionFacts> = all
        .iter()
        .filter(|d| {
            d.domain_name.eq_ignore_ascii_case(&host)
                || d.aliases.iter().any(|a| a.eq_ignore_ascii_case(&host))
        })
        .collect();
    // An exact alias wins over a wildcard, as CloudFront routes it.
    let matches = if exact.is_empty() {
        all.iter()
            .filter(|d| d.aliases.iter().any(|a| wildcard_matches(a, &host)))
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let mut known: Vec<String> = all.iter().flat_map(|d| d.aliases.clone()).collect();
            known.sort();
            Err(ResolveError::NoSuchDomain { host, known })
        }
        many => Err(ResolveError::Ambiguous {
            host,
            ids: many.iter().map(|d| d.id.clone()).collect(),
        }),
    }
}

fn wildcard_matches(alias: &str, host: &str) -> bool {
    match alias.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(suffix)),
        None => false,
    }
}

/// The S3 origin of `dist` that serves `bucket`, or the only S3 origin when the bucket is not
/// known yet.
pub fn serving(dist: &DistributionFacts, bucket: Option<&str>) -> Result<Serving, ResolveError> {
    let s3: Vec<(String, &OriginFacts)> = dist
        .origins
        .iter()
        .filter_map(|o| bucket_of_origin(&o.domain_name).map(|b| (b, o)))
        .collect();
    let no_origin = || ResolveError::NoS3Origin {
        id: dist.id.clone(),
        bucket: bucket.map(str::to_string),
        origins: dist
            .origins
            .iter()
            .map(|o| format!("{}{}", o.domain_name, o.origin_path))
            .collect(),
    };
    let chosen = match bucket {
        Some(b) => s3
            .iter()
            .find(|(name, _)| name == b)
            .ok_or_else(no_origin)?,
        None => {
            let mut names: Vec<String> = s3.iter().map(|(n, _)| n.clone()).collect();
            names.dedup();
            match names.len() {
                0 => return Err(no_origin()),
                1 => &s3[0],
                _ => {
                    return Err(ResolveError::SeveralBuckets {
                        id: dist.id.clone(),
                        buckets: names,
                    })
                }
            }
        }
    };
    Ok(Serving {
        id: dist.id.clone(),
        bucket: chosen.0.clone(),
        origin_path: chosen.1.origin_path.trim_end_matches('/').to_string(),
        host: dist
            .aliases
            .iter()
            .find(|a| !a.starts_with('*'))
            .cloned()
            .unwrap_or_else(|| dist.domain_name.clone()),
    })
}

/// The deploy prefix an OriginPath implies (`/site` → `site/`).
pub fn prefix_of(origin_path: &str) -> String {
    normalize_prefix(origin_path).unwrap_or_default()
}

/// Checks that what is deployed under `prefix` is visible through the distribution.
pub fn check_prefix(serving: &Serving, prefix: &str) -> Result<(), ResolveError> {
    let root = prefix_of(&serving.origin_path);
    if prefix.starts_with(&root) {
        Ok(())
    } else {
        Err(ResolveError::OutsideOriginPath {
            id: serving.id.clone(),
            prefix: prefix.to_string(),
            origin_path: serving.origin_path.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_domains() {
        let cases = [
            ("my-site.s3.amazonaws.com", Some("my-site")),
            ("my-site.s3.us-west-2.amazonaws.com", Some("my-site")),
            ("my-site.s3-us-west-2.amazonaws.com", Some("my-site")),
            (
                "my.site.com.s3.dualstack.eu-west-1.amazonaws.com",
                Some("my.site.com"),
            ),
            (
                "my-site.s3-website-us-east-1.amazonaws.com",
                Some("my-site"),
            ),
            (
                "www.example.com.s3-website.eu-central-1.amazonaws.com",
                Some("www.example.com"),
            ),
            ("My-Site.S3.amazonaws.com.", Some("my-site")),
            ("site.s3.cn-north-1.amazonaws.com.cn", Some("site")),
            ("s3.amazonaws.com", None),
            ("example.com", None),
            ("my-alb-123.us-east-1.elb.amazonaws.com", None),
            ("api.example.com.s3.example.org", None),
        ];
        for (domain, want) in cases {
            assert_eq!(bucket_of_origin(domain).as_deref(), want, "{domain}");
        }
    }

    fn dist(id: &str, aliases: &[&str], origins: &[(&str, &str)]) -> DistributionFacts {
        DistributionFacts {
            id: id.into(),
            domain_name: format!("{}.cloudfront.net", id.to_lowercase()),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            origins: origins
                .iter()
                .map(|(d, p)| OriginFacts {
                    domain_name: d.to_string(),
                    origin_path: p.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn domains_match_aliases() {
        let all = vec![
            dist(
                "E1",
                &["www.example.com", "example.com"],
                &[("www.s3.amazonaws.com", "")],
            ),
            dist("E2", &["*.example.com"], &[("wild.s3.amazonaws.com", "")]),
            dist(
                "E3",
                &["docs.example.org"],
                &[("docs.s3.amazonaws.com", "/v2")],
            ),
            dist(
                "E4",
                &["docs.example.org"],
                &[("docs.s3.amazonaws.com", "/v3")],
            ),
        ];
        assert_eq!(
            by_domain("WWW.example.com.", &all).map(|d| &d.id[..]),
            Ok("E1")
        );
        assert_eq!(
            by_domain("shop.example.com", &all).map(|d| &d.id[..]),
            Ok("E2")
        );
        assert_eq!(
            by_domain("e3.cloudfront.net", &all).map(|d| &d.id[..]),
            Ok("E3")
        );
        assert!(matches!(
            by_domain("docs.example.org", &all),
            Err(ResolveError::Ambiguous { ids, .. }) if ids == ["E3", "E4"]
        ));
        let err = by_domain("nope.example.net", &all).expect_err("no match");
        assert!(
            err.to_string()
                .contains("known aliases: *.example.com, docs.example.org"),
            "{err}"
        );
    }

    #[test]
    fn serving_origin() {
        let d = dist(
            "E1",
            &[],
            &[
                ("api.example.com", ""),
                ("site.s3.us-east-1.amazonaws.com", "/live/"),
            ],
        );
        let s = serving(&d, None).expect("one S3 origin");
        assert_eq!(
            (s.bucket.as_str(), s.origin_path.as_str()),
            ("site", "/live")
        );
        assert_eq!(prefix_of(&s.origin_path), "live/");
        assert!(check_prefix(&s, "live/").is_ok());
        assert!(check_prefix(&s, "live/v2/").is_ok());
        assert!(check_prefix(&s, "").is_err());
        let err = serving(&d, Some("other")).expect_err("wrong bucket");
        assert!(err.to_string().contains("api.example.com"), "{err}");
        let two = dist(
            "E2",
            &[],
            &[("a.s3.amazonaws.com", ""), ("b.s3.amazonaws.com", "")],
        );
        assert!(matches!(
            serving(&two, None),
            Err(ResolveError::SeveralBuckets { .. })
        ));
        assert_eq!(serving(&two, Some("b")).map(|s| s.bucket), Ok("b".into()));
    }
}
