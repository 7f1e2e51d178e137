use super::super::c::C;
pub struct Z(pub C);
