//! The embedded dev genesis: one validator and funded accounts whose keys are derived from
//! public seeds. For local development only: anyone can sign for these accounts.

use quorate_proto::Keypair;

use crate::Genesis;

/// Chain id of the dev chain.
pub const DEV_CHAIN_ID: &str = "quorate-dev";

/// Number of funded dev accounts.
pub const DEV_ACCOUNTS: usize = 4;

/// The dev genesis as shipped in `genesis/examples/dev.json`.
const DEV_GENESIS_JSON: &str = include_str!("../examples/dev.json");

fn dev_key(context: &str, index: u32) -> Keypair {
    let mut h = blake3::Hasher::new_derive_key(context);
    h.update(&index.to_le_bytes());
    Keypair::from_secret(h.finalize().as_bytes())
}

/// Key of the dev validator (public, insecure).
pub fn dev_validator_key() -> Keypair {
    dev_key("quorate dev validator key (insecure, public)", 0)
}

/// Key of dev account `index` (public, insecure).
pub fn dev_account_key(index: u32) -> Keypair {
    dev_key("quorate dev account key (insecure, public)", index)
}

/// The embedded dev genesis.
pub fn dev_genesis() -> Genesis {
    Genesis::from_json(DEV_GENESIS_JSON).expect("the embedded dev genesis is valid (tested)")
}

/// The dev genesis as the generator builds it; the shipped file must equal this.
pub fn build_dev_genesis() -> Genesis {
    let accounts: Vec<Keypair> = (0..DEV_ACCOUNTS as u32).map(dev_account_key).collect();
    let mut g = crate::assemble(
        DEV_CHAIN_ID,
        0,
        &[dev_validator_key()],
        &accounts,
        1_000_000_000_000,
    );
    g.validators[0].name = "dev-validator".into();
    for (i, a) in g.accounts.iter_mut().enumerate() {
        a.name = format!("dev-{i}");
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_dev_genesis_matches_generator() {
        let built = build_dev_genesis();
        if std::env::var_os("QUORATE_BLESS").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/examples/dev.json"),
                built.to_json(),
            )
            .expect("write");
        }
        assert_eq!(
            dev_genesis(),
            built,
            "run with QUORATE_BLESS=1 to regenerate examples/dev.json"
        );
    }
}
