//! Embeds the SQL migrations (`migrations/sqlite`, `migrations/postgres`): writes
//! `$OUT_DIR/migrations.rs` with each directory's files as `(file name, contents)`, so
//! the binary carries its schema without sqlx's `migrate!` macro, whose proc-macro crate
//! would compile a second copy of sqlx (and of SQLite's C source) for the host. The
//! directory stays the one list of migrations: a new file there is picked up here.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = String::new();
    for (name, dir) in [
        ("SQLITE", "migrations/sqlite"),
        ("POSTGRES", "migrations/postgres"),
    ] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
            .collect();
        files.sort();
        writeln!(out, "pub(super) static {name}: &[(&str, &str)] = &[").unwrap();
        for path in files {
            let file_name = path
                .file_name()
                .unwrap()
                .to_str()
                .expect("a UTF-8 file name");
            writeln!(
                out,
                "    ({file_name:?}, include_str!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let target = Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs");
    fs::write(target, out).expect("cannot write migrations.rs");
}
