//! Rust types and the embedded interface from `proto/proto/quorate/contracts/v1/credit_escrow.proto`.

fn main() {
    quorate_sdk::build::contract(
        &["quorate/contracts/v1/credit_escrow.proto"],
        &["../../proto/proto"],
    );
}
