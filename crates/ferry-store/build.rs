//! Rebuilds the crate when a migration changes: `sqlx::migrate!` embeds the
//! `.sql` files at compile time, and Cargo does not see them otherwise.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
