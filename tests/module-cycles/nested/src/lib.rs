//! a/b.rs (non-mod.rs layout) and c.rs import each other with `super::super` and a nested tree.
pub mod a;
pub mod c;
