//! What the bucket records about its own deploys: the manifest (a small root plus chunked,
//! content-addressed bases), its encoding and validation, the records it holds, and the view a
//! deploy builds of it by reading only the chunks that can differ from the build.

pub mod entry;
pub mod format;
pub mod history;
pub mod layout;
pub mod v1;
pub mod view;
