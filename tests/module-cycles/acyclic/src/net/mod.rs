//! A parent that uses its child, and a child that uses only the crate's bottom.
mod wire;
pub use self::wire::{self as w, Wire};
pub struct Net;
pub fn f() -> w::Wire {
    Wire(crate::base::Base)
}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn t() {
        let _ = f();
    }
}
