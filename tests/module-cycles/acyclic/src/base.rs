//! The bottom: imports nothing from the crate.
use std::collections::HashMap;
pub struct Base;
// use crate::top::Top;  (a comment: not an edge; top imports base, so an edge would be a cycle)
/* use crate::top::Top; /* nested */ use crate::net::Net; */
pub const S: &str = "use crate::top::Top; crate::net::f()";
pub const R: &str = r#"use crate::net::Net; "quoted" "#;
pub const B: &[u8] = br"use crate::top::Top;";
pub const C: char = '"';
pub const D: char = '\'';
pub fn longest<'a>(a: &'a str, _m: HashMap<u8, u8>) -> &'a str {
    let _ = 'x';
    a
}
/// Doc comments are comments: [`crate::top::Top`].
pub fn none() {}
