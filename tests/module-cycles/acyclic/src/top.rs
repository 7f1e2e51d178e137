//! The top: imports everything below it, and nothing imports it back.
use crate::base::{self, Base};
use crate::net::{
    wire_alias_is_not_a_module as _,
    Net,
};
use super::net::w;
pub struct Top(Base, Net, w::Wire);
pub fn g() {
    use crate::net::f;
    let _ = f();
    let _ = base::none();
    let _: Vec<u8> = std::vec::Vec::new();
}
