//! `unlock`: removes the lock of a deploy that died, after showing who held it and since when.
//! Asks on a terminal; `--yes` in CI. The removal is conditioned on the root as read, so a
//! deploy that renews its lock meanwhile keeps it.

use crate::cloud::bucket::{Bucket, Fetch, Precondition};
use crate::commands::deploy::connect;
use crate::commands::lease::root_headers;
use crate::commands::remote;
use crate::error::{code, Error};
use crate::output::progress::Reporter;
use crate::settings::Settings;

pub async fn unlock(settings: &Settings) -> Result<u8, Error> {
    let reporter = Reporter::new(settings.verbosity, false);
    let session = connect(settings, &reporter).await?;
    let bucket = &session.bucket;
    let layout = &session.target.layout;
    let view = remote::read_root(bucket, layout).await?;
    let now = time::OffsetDateTime::now_utc();
    if view.root.legacy {
        return unlock_legacy(settings, bucket, &layout.legacy_lock_key()).await;
    }
    let Some(lock) = view.root.lock.clone() else {
        println!("{} is not locked: nothing to do.", session.target.url());
        return Ok(code::OK);
    };
    let age = crate::clock::parse(&lock.started)
        .map_or_else(|| "?".into(), |t| crate::clock::age(t, now));
    let expired = crate::clock::parse(&lock.expires).is_some_and(|t| t <= now);
    println!(
        "{} is locked by {} since {} ({age} ago); the lock {} {}.",
        session.target.url(),
        lock.holder,
        lock.started,
        if expired { "expired at" } else { "expires at" },
        lock.expires
    );
    if !agreed(settings)? {
        return Ok(code::OK);
    }
    let mut root = view.root.clone();
    root.lock = None;
    let etag = view.etag.clone().unwrap_or_default();
    match bucket
        .put_bytes(
            &layout.manifest_key,
            root.encode(),
            &root_headers(),
            Some(Precondition::IfMatch(etag)),
        )
        .await
    {
        Ok(_) => {
            println!(
                "Lock removed. What the dead deploy may have changed stays recorded as unverified: the next deploy rewrites it."
            );
            Ok(code::OK)
        }
        Err(crate::cloud::bucket::BucketError::PreconditionFailed) => Err(Error::Conflict {
            bucket: bucket.name().to_string(),
            key: layout.manifest_key.clone(),
        }),
        Err(source) => Err(Error::Bucket {
            what: "cannot write the manifest",
            bucket: bucket.name().to_string(),
            key: layout.manifest_key.clone(),
            source,
        }),
    }
}

/// Asks before removing a lock, and says so when the answer is no.
fn agreed(settings: &Settings) -> Result<bool, Error> {
    let yes = confirm(
        settings,
        "Remove the lock? Only do this if that deploy is no longer running.",
    )?;
    if !yes {
        println!("Left as it is.");
    }
    Ok(yes)
}

/// The separate lock object of a version-1 manifest.
async fn unlock_legacy<B: Bucket>(settings: &Settings, bucket: &B, key: &str) -> Result<u8, Error> {
    match bucket.get(key, None).await {
        Ok(Fetch::Found { body, .. }) => {
            println!(
                "s3://{}/{key} holds: {}",
                bucket.name(),
                String::from_utf8_lossy(&body).trim()
            );
            if !agreed(settings)? {
                return Ok(code::OK);
            }
            let results = bucket.delete(&[key.to_string()]).await;
            match results.into_iter().next() {
                Some(Err(source)) => Err(Error::Bucket {
                    what: "cannot delete the lock",
                    bucket: bucket.name().to_string(),
                    key: key.to_string(),
                    source,
                }),
                _ => {
                    println!("Lock removed.");
                    Ok(code::OK)
                }
            }
        }
        Ok(_) => {
            println!(
                "s3://{}/{key} does not exist: nothing to do.",
                bucket.name()
            );
            Ok(code::OK)
        }
        Err(source) => Err(Error::Bucket {
            what: "cannot read the lock",
            bucket: bucket.name().to_string(),
            key: key.to_string(),
            source,
        }),
    }
}

/// Yes with `--yes`; otherwise asks on a terminal, and refuses to guess anywhere else.
pub fn confirm(settings: &Settings, question: &str) -> Result<bool, Error> {
    use std::io::{BufRead, IsTerminal, Write};
    if settings.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() || settings.json {
        return Err(Error::Usage(format!(
            "{question} There is no terminal to ask on: pass --yes to confirm"
        )));
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}
