//! A parent re-exports its child, and the child uses an error type defined in the parent.
pub mod p;
