//! No cycle, but every trap the lexer must not fall into points the wrong way.
mod base;
pub mod net;
mod top;
pub fn lib_fn() -> base::Base {
    base::Base
}
