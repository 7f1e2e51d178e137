pub struct C;
pub fn c(a: crate::a::A) -> crate::a::A {
    a
}
pub use crate::a::A as AliasOfA;
