//! Quorate's wire format: the protobuf messages and gRPC services, and the rules that give
//! bytes their meaning (hashes, addresses, signatures, Merkle roots, commit certificates).
//!
//! Everything a client in another language must reproduce to sign a transaction or check a
//! block lives here, next to the `.proto` files it interprets.

pub mod certificate;
pub mod crypto;
pub mod governance;
pub mod keyset;
pub mod merkle;
pub mod tx;

/// Generated protobuf and gRPC code for package `quorate.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("quorate.v1");
}

/// Arguments, results and events of the system contracts (`Call.args` and `Receipt.return_data`
/// hold these messages encoded).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod contracts {
    /// The remittance contract.
    pub mod remittance {
        tonic::include_proto!("quorate.contracts.remittance.v1");
    }
    /// The credit-certificate escrow contract.
    pub mod credit_escrow {
        tonic::include_proto!("quorate.contracts.credit_escrow.v1");
    }
    /// The certificate issuance contract.
    pub mod certificates {
        tonic::include_proto!("quorate.contracts.certificates.v1");
    }
    /// The device control permissions contract.
    pub mod device_permissions {
        tonic::include_proto!("quorate.contracts.device_permissions.v1");
    }
}

/// Encoded `FileDescriptorSet` of every Quorate proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("quorate_descriptor");

pub use crypto::{Address, Hash32, Keypair, PublicKey};
