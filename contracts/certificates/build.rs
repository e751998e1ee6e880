//! Rust types and the embedded interface from `proto/proto/quorate/contracts/v1/certificates.proto`.

fn main() {
    quorate_sdk::build::contract(
        &["quorate/contracts/v1/certificates.proto"],
        &["../../proto/proto"],
    );
}
