//! Rust types and the embedded interface from `proto/proto/quorate/contracts/v1/remittance.proto`
//! and, with the feature `v2`, `proto/quorate/contracts/v2/remittance.proto` (the upgrade's
//! method).

fn main() {
    if std::env::var_os("CARGO_FEATURE_V2").is_some() {
        quorate_sdk::build::contract(
            &[
                "quorate/contracts/v1/remittance.proto",
                "quorate/contracts/v2/remittance.proto",
            ],
            &["../../proto/proto", "proto"],
        );
    } else {
        quorate_sdk::build::contract(
            &["quorate/contracts/v1/remittance.proto"],
            &["../../proto/proto"],
        );
    }
}
