mod child;
pub use child::Thing;
#[derive(Debug)]
pub struct PError;
