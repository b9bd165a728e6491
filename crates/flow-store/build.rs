//! Build script: `sqlx::migrate!()` embeds the files of `migrations/` (SQLite) and
//! `migrations_pg/` (PostgreSQL) at compile time, but cargo does not know about them; this makes
//! adding or editing a migration rebuild the crate.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations_pg");
}
