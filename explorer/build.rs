//! Builds the explorer's pages with npm (Vite and TypeScript, versions from
//! `explorer/package-lock.json`) into `OUT_DIR/dist` and writes the table that embeds them
//! (ADR 0014). `QUORATE_EXPLORER_DIST=<dir>` embeds a directory built elsewhere instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let repo = here.parent().expect("repository").to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-env-changed=QUORATE_EXPLORER_DIST");
    println!("cargo:rerun-if-env-changed=QUORATE_PROTO_DIR");
    // Each source file, not the directories: the TypeScript library's build writes its
    // generated code into clients/typescript/src/gen, which must not make the next cargo
    // command build everything again.
    for watched in [
        "explorer/src",
        "explorer/index.html",
        "explorer/vite.config.ts",
        "explorer/tsconfig.json",
        "explorer/package.json",
        "explorer/package-lock.json",
        "explorer/scripts/build.mjs",
        "clients/typescript/src",
        "clients/typescript/tsconfig.json",
        "clients/typescript/package.json",
        "clients/typescript/package-lock.json",
        "clients/typescript/scripts",
        "proto/proto",
    ] {
        watch(&repo.join(watched));
    }
    let dist = match std::env::var_os("QUORATE_EXPLORER_DIST") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dist = out.join("dist");
            let status = Command::new("node")
                .arg(here.join("scripts/build.mjs"))
                .arg(&dist)
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => panic!(
                    "building the explorer (node explorer/scripts/build.mjs) failed ({s}); see its output above"
                ),
                Err(e) => panic!(
                    "building the explorer needs Node.js 20.19 or later, npm and protoc ({e}): run \
                     scripts/setup.sh, or set QUORATE_EXPLORER_DIST to a directory built with \
                     `npm run build` in explorer/"
                ),
            }
            dist
        }
    };
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    if std::env::var_os("QUORATE_EXPLORER_DIST").is_some() {
        // A directory built elsewhere: its files are the sources.
        for (_, path) in &files {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    files.sort();
    assert!(
        files.iter().any(|(name, _)| name == "index.html"),
        "the explorer's build has no index.html in {}",
        dist.display()
    );
    let mut table = String::from("/// The explorer's files: path under /explorer/, contents.\npub static FILES: &[(&str, &[u8])] = &[\n");
    for (name, path) in &files {
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write");
    }
    table.push_str("];\n");
    std::fs::write(out.join("files.rs"), table).expect("write files.rs");
}

/// Tells Cargo to run this script again when `path` (a file, or every file under a directory
/// but generated code in `gen/`) changes.
fn watch(path: &Path) {
    if path.is_dir() {
        let entries =
            std::fs::read_dir(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        for entry in entries {
            let p = entry.expect("directory entry").path();
            if p.file_name()
                .is_some_and(|n| n == "gen" || n == "node_modules")
            {
                continue;
            }
            watch(&p);
        }
    } else {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Every file under `dir`, as (path relative to `root` with `/`, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading the explorer's build {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((name, path));
        }
    }
}
