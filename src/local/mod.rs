//! The build folder on this machine: which files it holds, their keys and hashes, and the
//! headers each would be served with.

pub mod hashed;
pub mod headers;
pub mod links;
pub mod project;
pub mod refs;
pub mod rules;
pub mod scan;
