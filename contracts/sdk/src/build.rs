//! For a contract's `build.rs`: compiles its `.proto` files into Rust types (in `OUT_DIR`) and
//! writes the interface descriptor `quorate_sdk::interface!` embeds (`OUT_DIR/interface.bin`).
//! Needs no protoc.
//!
//! ```ignore
//! // build.rs, with quorate-sdk as a build-dependency with feature "build"
//! fn main() {
//!     quorate_sdk::build::contract(&["proto/contract.proto"], &["proto"]);
//! }
//! ```

use std::path::{Path, PathBuf};

use prost::Message;

/// Compiles `files` (found under `includes`), writes the generated Rust modules and
/// `interface.bin` to `OUT_DIR`, and tells cargo to rerun when any of them changes. Panics
/// with the compiler's message on an error (build scripts report by panicking).
pub fn contract(files: &[&str], includes: &[&str]) {
    for dir in includes {
        std::println!("cargo:rerun-if-changed={dir}");
    }
    let descriptors = protox::compile(files, includes)
        .unwrap_or_else(|e| std::panic!("compiling {files:?}: {e:?}"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    write(&out.join("interface.bin"), &descriptors.encode_to_vec());
    prost_build::Config::new()
        .compile_fds(descriptors)
        .unwrap_or_else(|e| std::panic!("generating Rust from {files:?}: {e}"));
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| std::panic!("writing {}: {e}", path.display()));
}
