//! Reading the manifest from the bucket: the root (validated against the target before it is
//! trusted), the chunks a deploy needs in one ranged read, and, after a large deploy died
//! mid-way, its planned state so that every key it may have written is treated as in doubt.

use crate::cloud::bucket::{Bucket, BucketError, Fetch};
use crate::error::Error;
use crate::state::format::{
    decode_reverse, decode_root, validate_entries, validate_root, ManifestError, ReverseDoc,
};
use crate::state::layout::Layout;
use crate::state::view::{chunk_table_of, read_whole, View};

fn manifest_error<B: Bucket>(bucket: &B, key: &str, source: ManifestError) -> Error {
    Error::Manifest {
        bucket: bucket.name().to_string(),
        key: key.to_string(),
        source,
    }
}

fn read_error<B: Bucket>(bucket: &B, key: &str, source: BucketError) -> Error {
    Error::Bucket {
        what: "cannot read the manifest",
        bucket: bucket.name().to_string(),
        key: key.to_string(),
        source,
    }
}

/// One deploy's stored reverse delta (the records it replaced), validated like the manifest.
pub async fn read_reverse<B: Bucket>(
    bucket: &B,
    layout: &Layout,
    key: &str,
    at: u64,
    len: u64,
) -> Result<ReverseDoc, Error> {
    let bytes = bucket
        .get_range(key, at, at + len)
        .await
        .map_err(|source| Error::Bucket {
            what: "cannot read the history",
            bucket: bucket.name().to_string(),
            key: key.to_string(),
            source,
        })?;
    let corrupt = |source| Error::Manifest {
        bucket: bucket.name().to_string(),
        key: key.to_string(),
        source,
    };
    let doc = decode_reverse(&bytes).map_err(corrupt)?;
    validate_entries(layout, doc.entries.iter().map(|(k, e)| (k, e.as_ref()))).map_err(corrupt)?;
    Ok(doc)
}

/// The manifest's root, or an empty view for a first deploy.
pub async fn read_root<B: Bucket>(bucket: &B, layout: &Layout) -> Result<View, Error> {
    let key = &layout.manifest_key;
    match bucket.get(key, None).await {
        Ok(Fetch::Found { body, etag }) => {
            let root = decode_root(&body).map_err(|e| manifest_error(bucket, key, e))?;
            validate_root(&root, layout).map_err(|e| manifest_error(bucket, key, e))?;
            Ok(View::from_root(layout.clone(), root, Some(etag)))
        }
        Ok(Fetch::Missing | Fetch::NotModified) => Ok(View::empty(layout.clone())),
        Err(source) => Err(read_error(bucket, key, source)),
    }
}

/// A root read back after a write of another deploy won, validated like any other.
pub fn view_of(
    layout: &Layout,
    root: crate::state::format::RootDoc,
    etag: String,
) -> Result<View, ManifestError> {
    validate_root(&root, layout)?;
    Ok(View::from_root(layout.clone(), root, Some(etag)))
}

/// Reads these chunks of the base: ranged GETs at the same time, one per cluster of them.
pub async fn read_chunks<B: Bucket>(
    bucket: &B,
    view: &mut View,
    chunks: &[usize],
) -> Result<(), Error> {
    let Some(base) = view.root.base.clone() else {
        return Ok(());
    };
    let reads = view.read_ranges(chunks).into_iter().map(|(start, end)| {
        let key = &base.key;
        async move {
            bucket
                .get_range(key, start, end)
                .await
                .map(|bytes| (start, bytes))
                .map_err(|source| read_error(bucket, key, source))
        }
    });
    for (start, bytes) in futures::future::try_join_all(reads).await? {
        view.absorb(start, &bytes)
            .map_err(|e| manifest_error(bucket, &base.key, e))?;
    }
    Ok(())
}

/// After a large deploy stopped before recording its outcome: every chunk is read, and so is
/// its planned state, and every key where the two differ is marked in doubt.
pub async fn recover<B: Bucket>(bucket: &B, view: &mut View) -> Result<(), Error> {
    let Some(planned) = view
        .root
        .in_progress
        .as_ref()
        .and_then(|p| p.planned.clone())
    else {
        return Ok(());
    };
    let unread = view.unread();
    read_chunks(bucket, view, &unread).await?;
    let bytes = match bucket.get(&planned.key, None).await {
        Ok(Fetch::Found { body, .. }) => body,
        // The planned state never landed: the deploy died before its intent was recorded.
        Ok(_) => return Ok(()),
        Err(source) => return Err(read_error(bucket, &planned.key, source)),
    };
    // A planned base is its chunks followed by the deploy's reverse delta, whose old records
    // must never pass for planned ones (one without absent keys parses as a chunk): only the
    // bytes up to where the intent says the chunks end are chunks.
    let end = planned
        .chunks_end
        .and_then(|e| usize::try_from(e).ok())
        .filter(|e| *e <= bytes.len())
        .ok_or_else(|| {
            manifest_error(
                bucket,
                &planned.key,
                crate::state::format::ManifestError::Corrupt(
                    "the intent does not say where the planned chunks end".into(),
                ),
            )
        })?;
    let table =
        chunk_table_of(&bytes[..end]).map_err(|e| manifest_error(bucket, &planned.key, e))?;
    let layout = view.layout.clone();
    let records = read_whole(&layout, &table, &bytes, &mut view.interner)
        .map_err(|e| manifest_error(bucket, &planned.key, e))?;
    view.doubt(&records);
    Ok(())
}
