//! a -> b -> c -> a through `use` declarations: one component of three, no direct pair.
mod a;
mod b;
mod c;
