//! Rust types and the embedded interface from `proto/proto/quorate/contracts/v1/device_permissions.proto`.

fn main() {
    quorate_sdk::build::contract(
        &["quorate/contracts/v1/device_permissions.proto"],
        &["../../proto/proto"],
    );
}
