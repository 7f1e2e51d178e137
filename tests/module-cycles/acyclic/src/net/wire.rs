//! A child module using the crate root's sibling, not its parent.
use crate::{base::Base};
pub struct Wire(pub Base);
