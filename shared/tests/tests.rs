//! The integration tests of herald-shared, in one test binary with a module per file (one link
//! instead of one per file): `cargo test -p herald-shared --test integration netns::` runs the
//! tests of `netns.rs` only.
mod conntable;
mod netlink_vectors;
mod netns;
mod procfs;
mod procfs_kernel;
