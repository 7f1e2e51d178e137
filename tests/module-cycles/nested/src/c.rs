use crate::{a::{b::{self}}, c as _};
pub struct C;
pub fn z() -> Option<b::Z> {
    None
}
