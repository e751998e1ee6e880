//! `quorate validators`: the validator set of a height as a node proves it, optionally checked
//! from the genesis file through every set change.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use quorate_client::ChainVerifier;
use quorate_genesis::{Genesis, KeyFile};
use quorate_proto::crypto::PublicKey;
use quorate_proto::v1::{GetValidatorSetResponse, ValidatorEntry};
use serde_json::{json, Value};

use super::client::{connect, runtime};
use super::ClientOpts;

/// Arguments of `quorate validators`.
#[derive(Args, Debug)]
pub struct ValidatorsArgs {
    /// Height whose set to show (default: the next height to be decided).
    #[arg(long, default_value_t = 0)]
    height: u64,
    /// Genesis file: check every set change from its validators (certificates and hashes)
    /// instead of trusting the node.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// Client options.
    #[command(flatten)]
    opts: ClientOpts,
}

/// A public key from 64 hex digits or a key file.
pub(super) fn parse_key(s: &str) -> anyhow::Result<PublicKey> {
    if let Ok(k) = PublicKey::from_hex(s) {
        return Ok(k);
    }
    let path = std::path::Path::new(s);
    if path.exists() {
        return Ok(KeyFile::load(path)
            .with_context(|| format!("key file {s}"))?
            .public());
    }
    PublicKey::from_hex(s).with_context(|| format!("{s:?} is neither a public key nor a key file"))
}

fn entry_json(e: &ValidatorEntry) -> Value {
    json!({ "public_key": hex::encode(&e.public_key), "name": e.name })
}

fn to_json(r: &GetValidatorSetResponse, verified: Option<bool>) -> Value {
    json!({
        "height": r.height,
        "set_hash": hex::encode(&r.set_hash),
        "validators": r.validators.iter().map(entry_json).collect::<Vec<_>>(),
        "changes": r.changes.iter().map(|c| json!({
            "height": c.height,
            "validators": c.validators.iter().map(entry_json).collect::<Vec<_>>(),
            "signatures": c.certificate.as_ref().map_or(0, |c| c.signatures.len()),
        })).collect::<Vec<_>>(),
        "scheduled": r.scheduled.iter().map(|s| json!({
            "from_height": s.from_height,
            "validators": s.validators.iter().map(entry_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "verified_from_genesis": verified,
    })
}

fn list(entries: &[ValidatorEntry]) -> String {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| format!("  {i}: {} {}", hex::encode(&e.public_key), e.name))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `quorate validators`.
pub(super) fn run(args: ValidatorsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let node = connect(&args.opts.node).await?;
        let r = node.validator_set(args.height).await?;
        let verified = match &args.genesis {
            None => None,
            Some(path) => {
                let genesis =
                    Genesis::load(path).with_context(|| format!("genesis {}", path.display()))?;
                let mut verifier = ChainVerifier::new(&genesis);
                let proven = verifier
                    .prove_set(&r.changes, r.height)
                    .context("the node's set changes do not check out from genesis")?;
                let named: Vec<&[u8]> = r.validators.iter().map(|v| v.public_key.as_ref()).collect();
                let proven_keys: Vec<&[u8]> = proven.keys().iter().map(|k| &k.0[..]).collect();
                if named != proven_keys {
                    anyhow::bail!(
                        "the node names a set for height {} other than the one its changes prove",
                        r.height
                    );
                }
                // And none is missing (issue 25): the certified header of the height before
                // names that set.
                if r.height > 1 {
                    let before = r.height - 1;
                    let block = node.block(before, false).await?;
                    let checked = verifier
                        .verify(&node, &block)
                        .await
                        .with_context(|| format!("block {before} does not check out"))?;
                    if checked.header.height != before {
                        anyhow::bail!(
                            "asked for block {before}, the node gave block {}",
                            checked.header.height
                        );
                    }
                    if checked.header.next_validators_hash.as_ref() != proven.hash().0 {
                        anyhow::bail!(
                            "block {before}, certified, names set {} for height {}; the node's changes prove {}: a change is missing",
                            hex::encode(&checked.header.next_validators_hash),
                            r.height,
                            proven.hash()
                        );
                    }
                }
                Some(true)
            }
        };
        if args.opts.json {
            println!("{}", to_json(&r, verified));
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "validators deciding height {} (set {}):\n{}",
            r.height,
            hex::encode(&r.set_hash),
            list(&r.validators)
        );
        for c in &r.changes {
            println!(
                "changed at height {} ({} validators, certified by {} signatures of the set before)",
                c.height,
                c.validators.len(),
                c.certificate.as_ref().map_or(0, |c| c.signatures.len())
            );
        }
        for s in &r.scheduled {
            println!(
                "decided, in force from height {}:\n{}",
                s.from_height,
                list(&s.validators)
            );
        }
        if verified == Some(true) {
            println!("checked from the genesis set through {} change(s)", r.changes.len());
        }
        Ok(ExitCode::SUCCESS)
    })
}
