//! The system contracts this release carries (built by `scripts/build-system-contracts.sh`
//! into `genesis/system/`): remittance, credit-certificate escrow, certificate issuance and
//! device control permissions. A genesis names them with their code hashes; a node deploys
//! them at genesis at fixed addresses (`Address::of_system_contract(name)`).

use quorate_proto::crypto::{Address, Hash32};

/// A system contract of this release.
#[derive(Clone, Copy, Debug)]
pub struct SystemContract {
    /// Its name in genesis and on the command line.
    pub name: &'static str,
    /// Its wasm bytecode.
    pub wasm: &'static [u8],
}

impl SystemContract {
    /// blake3 of the bytecode.
    pub fn code_hash(&self) -> Hash32 {
        Hash32::of(self.wasm)
    }

    /// Where it is deployed.
    pub fn address(&self) -> Address {
        Address::of_system_contract(self.name)
    }
}

/// Name of the remittance contract.
pub const REMITTANCE: &str = "remittance";
/// Name of the credit-certificate escrow contract.
pub const CREDIT_ESCROW: &str = "credit-escrow";
/// Name of the certificate issuance contract.
pub const CERTIFICATES: &str = "certificates";
/// Name of the device control permissions contract.
pub const DEVICE_PERMISSIONS: &str = "device-permissions";

/// Every system contract of this release.
pub const SYSTEM_CONTRACTS: [SystemContract; 4] = [
    SystemContract {
        name: REMITTANCE,
        wasm: include_bytes!("../system/remittance.wasm"),
    },
    SystemContract {
        name: CREDIT_ESCROW,
        wasm: include_bytes!("../system/credit_escrow.wasm"),
    },
    SystemContract {
        name: CERTIFICATES,
        wasm: include_bytes!("../system/certificates.wasm"),
    },
    SystemContract {
        name: DEVICE_PERMISSIONS,
        wasm: include_bytes!("../system/device_permissions.wasm"),
    },
];

/// The system contract called `name`, if this release has it.
pub fn system_contract(name: &str) -> Option<&'static SystemContract> {
    SYSTEM_CONTRACTS.iter().find(|c| c.name == name)
}
