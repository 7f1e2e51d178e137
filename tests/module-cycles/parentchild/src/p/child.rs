use super::PError;
pub struct Thing(pub PError);
