//! Multi-key accounts on the command line: multi-signature addresses (`keys multisig`), key
//! sets (`account keys`, key changes), and signing for an account with several keys
//! (`--account`, `--cosign`, `--key-set`, `tx sign`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use quorate_genesis::KeyFile;
use quorate_proto::crypto::{Address, Keypair};
use quorate_proto::keyset;
use quorate_proto::tx::{cosign, tx_hash};
use quorate_proto::v1::{
    key_change, tx_body, KeyChange, KeySet, Thresholds, Transaction, WeightedKey,
};
use serde_json::{json, Value};

use super::client::{connect, runtime};
use super::{ClientOpts, SignOpts};

/// Signing for accounts with several keys: which account, which other local keys co-sign, and
/// the key set a multi-signature address registers with its first transaction.
#[derive(Args, Debug, Clone, Default)]
pub struct MultiSignOpts {
    /// The account the transaction is for, when it is not the `--from` key's own address (a
    /// multi-signature address, or an account whose key set changed).
    #[arg(long = "account", value_name = "ADDRESS")]
    pub for_account: Option<String>,
    /// Further key files that sign the same transaction (each adds its weight).
    #[arg(long, value_name = "KEY_FILE")]
    pub cosign: Vec<PathBuf>,
    /// The key set file (`quorate keys multisig --out`) a multi-signature address registers
    /// with its first transaction; sets `--account` to its address.
    #[arg(long, value_name = "FILE")]
    pub key_set: Option<PathBuf>,
    /// A key set a command built itself (the escrow's 2-of-2 address).
    #[arg(skip)]
    pub key_set_value: Option<KeySet>,
}

impl MultiSignOpts {
    /// The key set to register, if given.
    pub fn load_key_set(&self) -> anyhow::Result<Option<KeySet>> {
        if let Some(set) = &self.key_set_value {
            return Ok(Some(set.clone()));
        }
        self.key_set.as_deref().map(read_key_set).transpose()
    }

    /// The account to sign for: `--account`, the address of `--key-set`, or `key`'s own.
    pub fn account(&self, key: &Keypair, key_set: Option<&KeySet>) -> anyhow::Result<Address> {
        let from_set = key_set.map(keyset::address);
        match (&self.for_account, from_set) {
            (Some(a), set) => {
                let a = Address::from_hex(a).with_context(|| format!("--account {a:?}"))?;
                if let Some(derived) = set.filter(|d| *d != a) {
                    bail!("--account {a} is not the address {derived} of --key-set");
                }
                Ok(a)
            }
            (None, Some(derived)) => Ok(derived),
            (None, None) => Ok(key.address()),
        }
    }

    /// Adds the `--cosign` keys' signatures to `tx`.
    pub fn cosign(&self, tx: &mut Transaction) -> anyhow::Result<()> {
        for path in &self.cosign {
            let key = KeyFile::load(path)?;
            if !cosign(tx, &key) {
                bail!("{} already signed this transaction", path.display());
            }
        }
        Ok(())
    }
}

/// Key-set commands of `quorate account`.
#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Show an account's key set: its keys with their weights and its thresholds.
    Keys {
        /// Address (40 hex digits).
        address: String,
    },
    /// Add a key with a weight to the signer account's key set.
    AddKey {
        /// Public key (64 hex digits) or key file.
        #[arg(value_name = "KEY")]
        public_key: String,
        /// Its weight.
        #[arg(long, default_value_t = 1)]
        weight: u32,
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Remove a key (refused if a threshold would become unreachable).
    RemoveKey {
        /// Public key (64 hex digits) or key file.
        #[arg(value_name = "KEY")]
        public_key: String,
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Give a key of the set a new weight.
    SetWeight {
        /// Public key (64 hex digits) or key file.
        #[arg(value_name = "KEY")]
        public_key: String,
        /// The new weight.
        #[arg(long)]
        weight: u32,
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Change the thresholds named; the others keep the account's current values (read from
    /// the node named, or from `--key-set` for an account's first transaction; name all six to
    /// sign without trusting a node's answer).
    SetThresholds {
        #[command(flatten)]
        thresholds: ThresholdChangeArgs,
        #[command(flatten)]
        sign: SignOpts,
    },
}

/// Thresholds per class of action.
#[derive(Args, Debug, Clone)]
pub struct ThresholdArgs {
    /// Weight every action needs unless another threshold covers it.
    #[arg(long)]
    pub threshold: u32,
    /// Weight a key change needs (default: the sum of all weights for `keys multisig`, the
    /// `--threshold` for `set-thresholds`).
    #[arg(long)]
    pub key_management: Option<u32>,
    /// Weight a contract deploy needs (default: `--threshold`).
    #[arg(long, default_value_t = 0)]
    pub deploy: u32,
    /// Weight a transfer (or call value) above `--large-transfer-above` needs.
    #[arg(long, default_value_t = 0, requires = "large_transfer_above")]
    pub large_transfer: u32,
    /// The amount above which `--large-transfer` applies.
    #[arg(long, default_value_t = 0)]
    pub large_transfer_above: u64,
    /// Weight a contract call needs, whatever value it carries (default: `--threshold`): a
    /// contract can move value a call does not carry, which `--large-transfer` cannot see.
    #[arg(long, default_value_t = 0)]
    pub contract_call: u32,
}

impl ThresholdArgs {
    fn thresholds(&self, key_management_default: u32) -> Thresholds {
        Thresholds {
            base: self.threshold,
            key_management: self.key_management.unwrap_or(key_management_default),
            deploy: self.deploy,
            large_transfer_above: self.large_transfer_above,
            large_transfer: self.large_transfer,
            contract_call: self.contract_call,
        }
    }
}

/// New values of some thresholds (`account set-thresholds`): at least one.
#[derive(Args, Debug, Clone)]
#[group(id = "thresholds_changed", required = true, multiple = true)]
pub struct ThresholdChangeArgs {
    /// Weight every action needs unless another threshold covers it.
    #[arg(long, group = "thresholds_changed")]
    pub threshold: Option<u32>,
    /// Weight a key change needs.
    #[arg(long, group = "thresholds_changed")]
    pub key_management: Option<u32>,
    /// Weight a contract deploy needs (0: `base`).
    #[arg(long, group = "thresholds_changed")]
    pub deploy: Option<u32>,
    /// Weight a transfer (or call value) above `--large-transfer-above` needs (0: none).
    #[arg(long, group = "thresholds_changed")]
    pub large_transfer: Option<u32>,
    /// The amount above which `--large-transfer` applies.
    #[arg(long, group = "thresholds_changed")]
    pub large_transfer_above: Option<u64>,
    /// Weight a contract call needs, whatever value it carries (0: `base`).
    #[arg(long, group = "thresholds_changed")]
    pub contract_call: Option<u32>,
}

impl ThresholdChangeArgs {
    /// `current` with the thresholds named replaced.
    pub fn apply(&self, current: Thresholds) -> Thresholds {
        Thresholds {
            base: self.threshold.unwrap_or(current.base),
            key_management: self.key_management.unwrap_or(current.key_management),
            deploy: self.deploy.unwrap_or(current.deploy),
            large_transfer: self.large_transfer.unwrap_or(current.large_transfer),
            large_transfer_above: self
                .large_transfer_above
                .unwrap_or(current.large_transfer_above),
            contract_call: self.contract_call.unwrap_or(current.contract_call),
        }
    }

    /// Whether every threshold is named (nothing to read from the node).
    fn complete(&self) -> bool {
        self.threshold.is_some()
            && self.key_management.is_some()
            && self.deploy.is_some()
            && self.large_transfer.is_some()
            && self.large_transfer_above.is_some()
            && self.contract_call.is_some()
    }
}

/// The thresholds `sign`'s account has now: those of the key set it registers (`--key-set`),
/// else those of its committed key set, else a single-key account's.
fn current_thresholds(sign: &SignOpts) -> anyhow::Result<Thresholds> {
    if let Some(set) = sign.multi.load_key_set()? {
        return Ok(set.thresholds.unwrap_or_default());
    }
    let key = KeyFile::load(&sign.from)?;
    let addr = sign.multi.account(&key, None)?;
    let resp = runtime()?.block_on(async {
        anyhow::Ok(connect(&sign.opts.node).await?.account(&addr).await?)
    })
    .context("reading the account's current thresholds (name every threshold to change them without a node)")?;
    let set = resp
        .key_set
        .unwrap_or_else(|| keyset::single(&key.public().0));
    Ok(set.thresholds.unwrap_or_default())
}

/// `quorate keys multisig`.
#[derive(Args, Debug)]
pub struct MultisigArgs {
    /// A key with its weight: `KEY[:WEIGHT]`, KEY a public key (64 hex digits) or a key file;
    /// weight 1 if omitted. Give one per key.
    #[arg(long = "member", value_name = "KEY[:WEIGHT]", required = true)]
    pub members: Vec<String>,
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
    /// Write the key set to this file (for `--key-set` on the address's first transaction).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A public key from hex or a key file (`quorate validators`' parser).
pub(super) fn public_key(spec: &str) -> anyhow::Result<[u8; 32]> {
    Ok(super::validators::parse_key(spec)?.0)
}

/// The JSON form of a key set (keys and thresholds).
pub fn key_set_json(set: &KeySet) -> Value {
    let t = set.thresholds.unwrap_or_default();
    json!({
        "keys": set.keys.iter().map(|k| json!({
            "public_key": hex::encode(&k.public_key),
            "weight": k.weight,
        })).collect::<Vec<_>>(),
        "thresholds": {
            "base": t.base,
            "key_management": t.key_management,
            "deploy": t.deploy,
            "large_transfer": t.large_transfer,
            "large_transfer_above": t.large_transfer_above,
            "contract_call": t.contract_call,
        },
    })
}

fn read_key_set(path: &Path) -> anyhow::Result<KeySet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    key_set_from_json(&v).with_context(|| format!("{}", path.display()))
}

/// A number of a key set file: absent means 0 where `optional`; anything that is not a whole
/// number within `max` is an error, never a silent truncation (issue 25).
fn number(v: &Value, what: &str, max: u64, optional: bool) -> anyhow::Result<u64> {
    match v {
        Value::Null if optional => Ok(0),
        Value::Null => bail!("no {what}"),
        _ => match v.as_u64() {
            Some(n) if n <= max => Ok(n),
            _ => bail!("{what} is {v}; it must be a whole number from 0 to {max}"),
        },
    }
}

/// Parses the JSON form of a key set ([`key_set_json`], plus the `address` that `quorate keys
/// multisig` writes, which must be the set's).
fn key_set_from_json(v: &Value) -> anyhow::Result<KeySet> {
    let u32_max = u64::from(u32::MAX);
    let keys = v["keys"]
        .as_array()
        .context("no \"keys\"")?
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let pk = hex::decode(
                k["public_key"]
                    .as_str()
                    .with_context(|| format!("key {i}: no public_key"))?,
            )
            .with_context(|| format!("key {i}: public_key is not hex"))?;
            Ok(WeightedKey {
                public_key: Bytes::from(pk),
                weight: number(&k["weight"], &format!("key {i}: weight"), u32_max, false)? as u32,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let t = &v["thresholds"];
    let n =
        |f: &str, max: u64, optional: bool| number(&t[f], &format!("threshold {f}"), max, optional);
    let set = keyset::canonicalize(KeySet {
        keys,
        thresholds: Some(Thresholds {
            base: n("base", u32_max, false)? as u32,
            key_management: n("key_management", u32_max, false)? as u32,
            deploy: n("deploy", u32_max, true)? as u32,
            large_transfer_above: n("large_transfer_above", u64::MAX, true)?,
            large_transfer: n("large_transfer", u32_max, true)? as u32,
            contract_call: n("contract_call", u32_max, true)? as u32,
        }),
    });
    keyset::validate(&set)?;
    if let Some(written) = v["address"].as_str() {
        let derived = keyset::address(&set);
        if written != derived.to_hex() {
            bail!("the file names address {written}, but its keys and thresholds derive {derived}");
        }
    }
    Ok(set)
}

/// `quorate keys multisig`: derives a multi-signature address from keys, weights and
/// thresholds (no node needed).
pub fn multisig(args: MultisigArgs) -> anyhow::Result<ExitCode> {
    let keys = args
        .members
        .iter()
        .map(|m| {
            let (key, weight) = match m.rsplit_once(':') {
                Some((k, w)) if w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty() => (
                    k,
                    w.parse::<u32>()
                        .with_context(|| format!("weight in {m:?}"))?,
                ),
                _ => (m.as_str(), 1),
            };
            Ok((public_key(key)?, weight))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let total: u64 = keys.iter().map(|(_, w)| u64::from(*w)).sum();
    let key_management = u32::try_from(total).unwrap_or(u32::MAX);
    let set = keyset::of(&keys, args.thresholds.thresholds(key_management));
    keyset::validate(&set).context("key set")?;
    let mut v = key_set_json(&set);
    v["address"] = json!(keyset::address(&set).to_hex());
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if args.json {
        println!("{v}");
    } else {
        println!("{}", key_set_text(&set));
    }
    Ok(ExitCode::SUCCESS)
}

fn key_set_text(set: &KeySet) -> String {
    let t = set.thresholds.unwrap_or_default();
    let mut out = format!("address {}\n", keyset::address(set));
    for k in &set.keys {
        out += &format!("  key {} weight {}\n", hex::encode(&k.public_key), k.weight);
    }
    out + "  " + &thresholds_text(&t)
}

/// A key set's thresholds in words.
fn thresholds_text(t: &Thresholds) -> String {
    let mut out = format!(
        "thresholds: base {}, key management {}, deploy {}",
        t.base,
        t.key_management,
        if t.deploy == 0 { t.base } else { t.deploy }
    );
    if t.large_transfer != 0 {
        out += &format!(
            ", transfers above {} {}",
            t.large_transfer_above, t.large_transfer
        );
    }
    if t.contract_call != 0 {
        out += &format!(", contract calls {}", t.contract_call);
    }
    out
}

/// `quorate account keys`: the key set of an account as the node's committed state holds it.
pub fn show(address: &str, opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    let addr = Address::from_hex(address).with_context(|| format!("address {address:?}"))?;
    runtime()?.block_on(async {
        let resp = connect(&opts.node).await?.account(&addr).await?;
        match (&resp.key_set, opts.json) {
            (Some(set), true) => {
                let mut v = key_set_json(set);
                v["address"] = json!(addr.to_hex());
                v["height"] = json!(resp.height);
                println!("{v}");
            }
            (None, true) => println!(
                "{}",
                json!({"address": addr.to_hex(), "single_key": true, "height": resp.height})
            ),
            (Some(set), false) => {
                let text = key_set_text(set);
                let body = text.split_once('\n').map_or("", |(_, b)| b);
                println!("account {addr} (height {})\n{body}", resp.height);
            }
            (None, false) => println!(
                "account {addr}: one key, the one its address is derived from (no key set)"
            ),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `quorate account add-key | remove-key | set-weight | set-thresholds`.
pub fn change(cmd: AccountCommand) -> anyhow::Result<ExitCode> {
    let (change, sign) = match cmd {
        AccountCommand::Keys { .. } => unreachable!("shown by `show`"),
        AccountCommand::AddKey {
            public_key: k,
            weight,
            sign,
        } => (
            key_change::Change::AddKey(WeightedKey {
                public_key: Bytes::copy_from_slice(&public_key(&k)?),
                weight,
            }),
            sign,
        ),
        AccountCommand::RemoveKey {
            public_key: k,
            sign,
        } => (
            key_change::Change::RemoveKey(Bytes::copy_from_slice(&public_key(&k)?)),
            sign,
        ),
        AccountCommand::SetWeight {
            public_key: k,
            weight,
            sign,
        } => (
            key_change::Change::SetWeight(WeightedKey {
                public_key: Bytes::copy_from_slice(&public_key(&k)?),
                weight,
            }),
            sign,
        ),
        AccountCommand::SetThresholds { thresholds, sign } => {
            // Only what is named changes (issue 25: `--threshold` alone silently cleared the
            // contract-call and large-transfer guards).
            let current = if thresholds.complete() {
                Thresholds::default()
            } else {
                current_thresholds(&sign)?
            };
            let new = thresholds.apply(current);
            if thresholds.large_transfer.is_some_and(|w| w != 0) && new.large_transfer_above == 0 {
                bail!("--large-transfer needs --large-transfer-above (the account has none yet): without it every transfer would be a large one");
            }
            // The values kept are the node's answer: say what is signed.
            eprintln!("{}", thresholds_text(&new));
            (key_change::Change::SetThresholds(new), sign)
        }
    };
    super::contract::send_and_report(
        sign,
        tx_body::Payload::Keys(KeyChange {
            change: Some(change),
        }),
    )
}

/// `quorate tx sign`: adds a signature to a saved transaction (offline), for co-signers to
/// pass the file along until the weight suffices.
pub fn sign_file(
    file: &Path,
    key: &Path,
    out: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut tx = super::client::read_tx_file(file)?;
    // What the co-signer signs, in words, not only its hash: a body that does not decode, or a
    // signature already there that does not verify, is not signed at all.
    let body = quorate_client::transaction::describe(&tx)
        .context("not signing this transaction")?
        .body;
    let keypair = KeyFile::load(key)?;
    quorate_client::transaction::cosign(&mut tx, &keypair)
        .with_context(|| format!("{} does not sign it", key.display()))?;
    let out = out.unwrap_or(file);
    std::fs::write(out, quorate_client::transaction::to_text(&tx))
        .with_context(|| format!("writing {}", out.display()))?;
    let hash = tx_hash(&tx.body);
    let signatures = 1 + tx.cosignatures.len();
    let signed_by: Vec<String> = std::iter::once(hex::encode(&tx.public_key))
        .chain(tx.cosignatures.iter().map(|c| hex::encode(&c.public_key)))
        .collect();
    if json {
        println!(
            "{}",
            json!({"tx_hash": hash.to_hex(), "signatures": signatures, "signed_by": signed_by,
                   "body": super::output::tx_body_json(&body), "saved": out.display().to_string()})
        );
    } else {
        // In words, as the library describes it, with every signature now on it checked.
        let summary = quorate_client::transaction::describe(&tx)?;
        println!(
            "{summary}\n{signatures} signatures, saved to {}",
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 25 (low): a weight above u32 was truncated without a word, and the address the
    /// file names was ignored.
    #[test]
    fn a_key_set_file_is_read_exactly_or_refused() {
        let key = |b: u8| hex::encode(quorate_proto::Keypair::from_secret(&[b; 32]).public().0);
        let file = |weight: Value, address: Option<&str>| {
            let mut v = json!({
                "keys": [{"public_key": key(1), "weight": weight}, {"public_key": key(2), "weight": 1}],
                "thresholds": {"base": 1, "key_management": 2},
            });
            if let Some(a) = address {
                v["address"] = json!(a);
            }
            v
        };
        let set = key_set_from_json(&file(json!(1), None)).expect("valid");
        let written = key_set_json(&set);
        let mut with_address = written.clone();
        with_address["address"] = json!(keyset::address(&set).to_hex());
        assert_eq!(key_set_from_json(&with_address).expect("round trip"), set);
        let err = key_set_from_json(&file(json!(u64::from(u32::MAX) + 2), None))
            .expect_err("truncated weight");
        assert!(err.to_string().contains("weight"), "{err}");
        assert!(key_set_from_json(&file(json!(-1), None)).is_err());
        assert!(key_set_from_json(&file(json!(1.5), None)).is_err());
        assert!(key_set_from_json(&file(Value::Null, None)).is_err());
        let err = key_set_from_json(&file(json!(1), Some(&"00".repeat(20))))
            .expect_err("another address");
        assert!(err.to_string().contains("derive"), "{err}");
    }
}
