//! Inline modules whose only back edge is a qualified path in code (no `use`).
pub mod x {
    pub fn f() -> u8 {
        crate::y::g()
    }
}
pub mod y {
    use super::x;
    pub fn g() -> u8 {
        1
    }
    pub fn h() -> u8 {
        x::f()
    }
}
