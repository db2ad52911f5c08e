//! Reading the manifest from the bucket: the root (validated against the target before it is
//! trusted), the chunks a deploy needs in one ranged read, and, after a large deploy died
//! mid-way, its planned state so that every key it may have written is treated as in doubt.

use crate::cloud::bucket::{Bucket, BucketError, Fetch};
use crate::error::Error;
use crate::state::format::{decode_root, validate_root, ManifestError};
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

/// Reads these chunks of the base with one ranged GET.
pub async fn read_chunks<B: Bucket>(
    bucket: &B,
    view: &mut View,
    chunks: &[usize],
) -> Result<(), Error> {
    let (Some((start, end)), Some(base)) = (view.span(chunks), view.root.base.clone()) else {
        return Ok(());
    };
    let bytes = bucket
        .get_range(&base.key, start, end)
        .await
        .map_err(|source| read_error(bucket, &base.key, source))?;
    view.absorb(start, &bytes)
        .map_err(|e| manifest_error(bucket, &base.key, e))
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
    let mut table = chunk_table_of(&bytes).map_err(|e| manifest_error(bucket, &planned.key, e))?;
    // A planned base is its chunks followed by one more member, the deploy's reverse delta
    // (see `execute`). A reverse delta without absent keys (a deploy that only changed existing
    // keys) parses as a chunk too, and its old records would pass for the planned ones: the
    // member that ends the object is never one of the planned state's chunks.
    if table
        .last()
        .is_some_and(|c| c.at + c.len == bytes.len() as u64)
    {
        table.pop();
    }
    let layout = view.layout.clone();
    let records = read_whole(&layout, &table, &bytes, &mut view.interner)
        .map_err(|e| manifest_error(bucket, &planned.key, e))?;
    view.doubt(&records);
    Ok(())
}
