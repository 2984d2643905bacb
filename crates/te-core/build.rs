//! Rebuilds te-core when a migration is added or removed:
//! `embed_migrations!` reads the folder listing at compile time, which cargo
//! does not track by itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
