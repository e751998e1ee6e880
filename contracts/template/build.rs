//! Generates the Rust types of `proto/contract.proto` and the interface descriptor the contract
//! embeds (so clients can call it with JSON).

fn main() {
    quorate_sdk::build::contract(&["contract.proto"], &["proto"]);
}
