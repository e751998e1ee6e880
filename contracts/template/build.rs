//! Generates the Rust types of `proto/contract.proto` and the interface descriptor the contract
//! embeds (so clients can call it with JSON). Needs no protoc: protox compiles the proto.
use std::path::PathBuf;

use prost::Message;

fn main() {
    println!("cargo:rerun-if-changed=proto");
    let descriptors =
        protox::compile(["contract.proto"], ["proto"]).unwrap_or_else(|e| panic!("{e:?}"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("interface.bin"), descriptors.encode_to_vec())
        .expect("write interface.bin");
    prost_build::Config::new()
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating Rust from contract.proto: {e}"));
}
