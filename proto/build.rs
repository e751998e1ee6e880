//! Compiles the `.proto` files with protoc (installed by `scripts/setup.sh`).
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "proto/quorate/v1/types.proto",
        "proto/quorate/v1/node.proto",
        "proto/quorate/v1/consensus.proto",
        "proto/quorate/v1/contract.proto",
        "proto/quorate/v1/snapshot.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("quorate_descriptor.bin"))
        .bytes(".")
        .compile_protos(&protos, &["proto"])?;
    // The system contracts' messages: their `service`s list contract methods, not gRPC services,
    // so no client or server code is generated for them.
    let contracts = [
        "proto/quorate/contracts/v1/remittance.proto",
        "proto/quorate/contracts/v1/credit_escrow.proto",
        "proto/quorate/contracts/v1/certificates.proto",
        "proto/quorate/contracts/v1/device_permissions.proto",
    ];
    for p in &contracts {
        println!("cargo:rerun-if-changed={p}");
    }
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .bytes(".")
        .compile_protos(&contracts, &["proto"])?;
    Ok(())
}
