pub fn b() {
    // A use inside a function body is still the module's import.
    use super::c::{
        C,
    };
    let _ = C;
}
pub struct B;
