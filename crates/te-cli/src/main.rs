//! te
fn main() {}
