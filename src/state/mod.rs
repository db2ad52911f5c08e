//! What the bucket records about its own deploys: the manifest, its encoding and validation.

pub mod manifest;
