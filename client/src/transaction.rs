//! Building, signing and co-signing transactions, offline: a signed transaction travels between
//! machines as text (the hex of its encoding, one line: what `quorate tx sign` reads and
//! writes), and a co-signer reads in words what it is asked to sign before it signs.

use std::fmt;

use bytes::Bytes;
use prost::Message as _;
use quorate_proto::crypto::{verify_strict, Address, Hash32, PublicKey};
use quorate_proto::tx::{signing_message, tx_hash, DecodedTx};
use quorate_proto::v1::{
    admin, governance, key_change, tx_body::Payload, Admin, Call, Governance, GovernancePolicy,
    KeyChange, Propose, ReplaceValidator, SetTrustedDeployer, Thresholds, Transaction, Transfer,
    TxBody, ValidatorEntry, WeightedKey,
};
use quorate_proto::Keypair;

use crate::error::ClientError;

/// The largest transaction read from text (the chain's limit is lower; the node enforces it).
pub const MAX_TEXT_TX_BYTES: usize = 4 << 20;

/// A transfer of `amount` to `to`.
pub fn transfer(to: Address, amount: u64, memo: &[u8]) -> Payload {
    Payload::Transfer(Transfer {
        to: Bytes::copy_from_slice(&to.0),
        amount,
        memo: Bytes::copy_from_slice(memo),
    })
}

/// A call of `method` of `contract` with encoded `args`, moving `value` to the contract.
pub fn call(contract: Address, method: &str, args: Vec<u8>, value: u64) -> Payload {
    Payload::Call(Call {
        contract: Bytes::copy_from_slice(&contract.0),
        method: method.to_owned(),
        args: args.into(),
        value,
    })
}

/// A deploy of the wasm `code`, its `init` export run with `init_args`.
pub fn deploy(code: Vec<u8>, init_args: Vec<u8>) -> Payload {
    Payload::Deploy(quorate_proto::v1::Deploy {
        code: code.into(),
        init_args: init_args.into(),
        ..Default::default()
    })
}

/// Adds `public_key` with `weight` to the signing account's keys.
pub fn add_key(public_key: &PublicKey, weight: u32) -> Payload {
    key_change(key_change::Change::AddKey(WeightedKey {
        public_key: Bytes::copy_from_slice(&public_key.0),
        weight,
    }))
}

/// Removes `public_key` from the signing account's keys.
pub fn remove_key(public_key: &PublicKey) -> Payload {
    key_change(key_change::Change::RemoveKey(Bytes::copy_from_slice(
        &public_key.0,
    )))
}

/// Gives `public_key`, a key of the account, the weight `weight`.
pub fn set_weight(public_key: &PublicKey, weight: u32) -> Payload {
    key_change(key_change::Change::SetWeight(WeightedKey {
        public_key: Bytes::copy_from_slice(&public_key.0),
        weight,
    }))
}

/// Replaces the account's thresholds.
pub fn set_thresholds(thresholds: Thresholds) -> Payload {
    key_change(key_change::Change::SetThresholds(thresholds))
}

fn key_change(change: key_change::Change) -> Payload {
    Payload::Keys(KeyChange {
        change: Some(change),
    })
}

/// Admin (the chain's admin account only): allows or stops `account` deploying precompiled
/// machine code.
pub fn set_trusted_deployer(account: Address, trusted: bool) -> Payload {
    admin_action(admin::Action::SetTrustedDeployer(SetTrustedDeployer {
        account: Bytes::copy_from_slice(&account.0),
        trusted,
    }))
}

/// Admin: hands the admin role to `to`.
pub fn set_admin(to: Address) -> Payload {
    admin_action(admin::Action::SetAdmin(Bytes::copy_from_slice(&to.0)))
}

/// Admin: adds a validator at the end of the set (in force some heights later).
pub fn add_validator(public_key: &PublicKey, name: &str) -> Payload {
    admin_action(admin::Action::AddValidator(ValidatorEntry {
        public_key: Bytes::copy_from_slice(&public_key.0),
        name: name.to_owned(),
    }))
}

/// Admin: removes the validator with `public_key`.
pub fn remove_validator(public_key: &PublicKey) -> Payload {
    admin_action(admin::Action::RemoveValidator(Bytes::copy_from_slice(
        &public_key.0,
    )))
}

/// Admin: puts `new` (with `name`) in the place of the validator `old`.
pub fn replace_validator(old: &PublicKey, new: &PublicKey, name: &str) -> Payload {
    admin_action(admin::Action::ReplaceValidator(ReplaceValidator {
        old_key: Bytes::copy_from_slice(&old.0),
        new: Some(ValidatorEntry {
            public_key: Bytes::copy_from_slice(&new.0),
            name: name.to_owned(),
        }),
    }))
}

/// Admin: puts the chain under `policy` (ADR 0016), which replaces the single admin; through a
/// proposal, replaces the policy in force.
pub fn set_policy(policy: GovernancePolicy) -> Payload {
    admin_action(admin::Action::SetPolicy(policy))
}

/// Admin (or through a proposal of kind `params`): new values of governed chain parameters
/// (`block_max_txs`, `fuel_price`, …; `quorate_genesis::GOVERNED_PARAMS`), in force
/// `validator_set_delay` heights after the block.
pub fn set_params(values: &[(&str, u64)]) -> Payload {
    admin_action(admin::Action::SetParams(quorate_proto::v1::ParamChanges {
        values: values
            .iter()
            .map(|(name, value)| quorate_proto::v1::ParamValue {
                name: (*name).to_owned(),
                value: *value,
            })
            .collect(),
    }))
}

/// Admin (or through a proposal of kind `upgrades`): replaces the code of the system contract
/// `name` with `code`, from `validator_set_delay` heights after the block on (its storage
/// stays).
pub fn upgrade_contract(name: &str, code: Vec<u8>) -> Payload {
    admin_action(admin::Action::UpgradeContract(
        quorate_proto::v1::UpgradeContract {
            name: name.to_owned(),
            code: code.into(),
        },
    ))
}

/// Admin (or through a proposal of kind `upgrades`): protocol `version` from `height` on
/// (ADR 0019); height 0 cancels the activation of `version` scheduled.
pub fn activate_protocol(version: u32, height: u64) -> Payload {
    admin_action(admin::Action::ActivateProtocol(
        quorate_proto::v1::ActivateProtocol { version, height },
    ))
}

/// Governance (members of the policy only): proposes the administrative `action` (a payload
/// of [`set_trusted_deployer`], [`add_validator`], [`set_policy`], …), open for approvals
/// `lifetime` heights (0: the policy's longest), with a `memo` for the other members. It
/// counts as the proposer's approval.
pub fn propose(action: Payload, lifetime: u64, memo: &str) -> Result<Payload, ClientError> {
    let Payload::Admin(action) = action else {
        return Err(ClientError::BadTransaction(
            "only an administrative action can be proposed".into(),
        ));
    };
    Ok(Payload::Governance(Governance {
        action: Some(governance::Action::Propose(Propose {
            action: Some(action),
            lifetime,
            memo: memo.to_owned(),
        })),
    }))
}

/// Governance: approves proposal `number`; the approval that reaches the threshold of its
/// kind executes it.
pub fn approve(number: u64) -> Payload {
    Payload::Governance(Governance {
        action: Some(governance::Action::Approve(number)),
    })
}

/// An administrative action in words (what a co-signer or an approving member reads).
pub fn describe_admin(action: Option<&admin::Action>) -> String {
    match action {
        Some(admin::Action::SetTrustedDeployer(t)) => format!(
            "{} {} as a trusted deployer",
            if t.trusted { "trust" } else { "distrust" },
            hex::encode(&t.account)
        ),
        Some(admin::Action::SetAdmin(to)) => {
            format!("hand the chain to the single admin {}", hex::encode(to))
        }
        Some(admin::Action::AddValidator(v)) => format!(
            "add validator {} ({:?})",
            hex::encode(&v.public_key),
            v.name
        ),
        Some(admin::Action::RemoveValidator(k)) => {
            format!("remove validator {}", hex::encode(k))
        }
        Some(admin::Action::ReplaceValidator(r)) => format!(
            "replace validator {} by {}",
            hex::encode(&r.old_key),
            r.new
                .as_ref()
                .map_or("nothing".into(), |n| hex::encode(&n.public_key))
        ),
        Some(admin::Action::SetParams(c)) => format!(
            "change chain parameters: {}",
            c.values
                .iter()
                .map(|v| format!("{} = {}", v.name, v.value))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(admin::Action::UpgradeContract(u)) => format!(
            "upgrade system contract {} to code {} ({} bytes)",
            u.name,
            Hash32::of(&u.code),
            u.code.len()
        ),
        Some(admin::Action::ActivateProtocol(a)) if a.height == 0 => {
            format!("cancel the activation of protocol version {}", a.version)
        }
        Some(admin::Action::ActivateProtocol(a)) => format!(
            "activate protocol version {} from height {}",
            a.version, a.height
        ),
        Some(admin::Action::SetPolicy(p)) => format!(
            "govern by {} members ({}; validators {}, deployers {}, params {}, upgrades {}, policy {} of them; proposals open {} heights)",
            p.members.len(),
            p.members
                .iter()
                .map(|m| format!("{} {}", m.name, hex::encode(&m.address)))
                .collect::<Vec<_>>()
                .join(", "),
            p.validators,
            p.deployers,
            p.params,
            p.upgrades,
            p.policy,
            p.proposal_lifetime
        ),
        None => "no action".into(),
    }
}

fn admin_action(action: admin::Action) -> Payload {
    Payload::Admin(Admin {
        action: Some(action),
    })
}

/// The body of a transaction of account `signer` carrying `payload` (a multi-signature
/// address's first transaction also carries its key set: set `key_set`).
pub fn body(
    chain_id: &str,
    signer: Address,
    nonce: u64,
    fuel_limit: u64,
    payload: Payload,
) -> TxBody {
    quorate_proto::tx::body_for(chain_id, signer, nonce, fuel_limit, payload)
}

/// `body` signed by `key`: the first signature (co-signers add theirs with [`cosign`]).
pub fn sign(body: &TxBody, key: &Keypair) -> Transaction {
    quorate_proto::tx::sign(body, key)
}

/// `tx` as text: the hex of its encoding and a newline.
pub fn to_text(tx: &Transaction) -> String {
    hex::encode(tx.encode_to_vec()) + "\n"
}

/// The transaction `text` holds ([`to_text`]'s form; spaces and newlines around it ignored),
/// checked for shape (sizes of keys, signatures and signer; a body that decodes).
pub fn from_text(text: &str) -> Result<Transaction, ClientError> {
    let bad = |why: String| ClientError::BadTransaction(why);
    let text = text.trim();
    if text.len() > 2 * MAX_TEXT_TX_BYTES {
        return Err(bad(format!(
            "{} hex digits; a transaction is at most {MAX_TEXT_TX_BYTES} bytes",
            text.len()
        )));
    }
    let bytes = hex::decode(text).map_err(|e| bad(format!("not hex: {e}")))?;
    from_bytes(&bytes)
}

/// The transaction encoded in `bytes`, checked for shape as [`from_text`] does.
pub fn from_bytes(bytes: &[u8]) -> Result<Transaction, ClientError> {
    let bad = |why: String| ClientError::BadTransaction(why);
    let tx = Transaction::decode(bytes).map_err(|e| bad(format!("not a transaction: {e}")))?;
    DecodedTx::from_transaction(tx.clone(), MAX_TEXT_TX_BYTES).map_err(|e| bad(e.to_string()))?;
    Ok(tx)
}

/// The keys whose signatures `tx` carries, each checked; a signature that does not verify is
/// an error naming its key (what a co-signer checks before adding its own).
pub fn check_signatures(tx: &Transaction) -> Result<Vec<PublicKey>, ClientError> {
    let message = signing_message(&tx_hash(&tx.body));
    std::iter::once((&tx.public_key, &tx.signature))
        .chain(
            tx.cosignatures
                .iter()
                .map(|c| (&c.public_key, &c.signature)),
        )
        .map(|(key, signature)| {
            if !verify_strict(key, &message, signature) {
                return Err(ClientError::BadTransaction(format!(
                    "the signature of key {} does not verify",
                    hex::encode(key)
                )));
            }
            PublicKey::from_slice(key).map_err(|e| ClientError::BadTransaction(e.to_string()))
        })
        .collect()
}

/// Adds `key`'s signature to `tx` after checking the signatures it carries; a key that signed
/// already is refused.
pub fn cosign(tx: &mut Transaction, key: &Keypair) -> Result<(), ClientError> {
    let signed = check_signatures(tx)?;
    if signed.contains(&key.public()) {
        return Err(ClientError::BadTransaction(format!(
            "key {} signed this transaction already",
            key.public().to_hex()
        )));
    }
    quorate_proto::tx::cosign(tx, key);
    Ok(())
}

/// A transaction in words: who acts, what it asks for, who signed. What a co-signer reads
/// before signing.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The transaction's hash.
    pub hash: Hash32,
    /// Its chain.
    pub chain_id: String,
    /// The account that acts.
    pub signer: Address,
    /// Its nonce.
    pub nonce: u64,
    /// Most fuel it may use.
    pub fuel_limit: u64,
    /// The body, decoded.
    pub body: TxBody,
    /// The keys whose signatures verify, in order.
    pub signed_by: Vec<PublicKey>,
}

/// `tx` in words, its signatures checked.
pub fn describe(tx: &Transaction) -> Result<Summary, ClientError> {
    let decoded = DecodedTx::from_transaction(tx.clone(), MAX_TEXT_TX_BYTES)
        .map_err(|e| ClientError::BadTransaction(e.to_string()))?;
    Ok(Summary {
        hash: decoded.hash,
        chain_id: decoded.body.chain_id.clone(),
        signer: decoded.signer,
        nonce: decoded.body.nonce,
        fuel_limit: decoded.body.fuel_limit,
        signed_by: check_signatures(tx)?,
        body: decoded.body,
    })
}

/// An address as text, named when it is a system contract's.
fn named(address: &[u8]) -> String {
    let text = hex::encode(address);
    quorate_genesis::system::SYSTEM_CONTRACTS
        .iter()
        .find(|c| c.address().0.as_slice() == address)
        .map_or(text.clone(), |c| format!("{} ({text})", c.name))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "transaction {}", self.hash)?;
        writeln!(
            f,
            "  account {} nonce {} on chain {:?}, fuel up to {}",
            self.signer, self.nonce, self.chain_id, self.fuel_limit
        )?;
        match &self.body.payload {
            Some(Payload::Transfer(t)) => write!(
                f,
                "  transfer {} to {} (memo {:?})",
                t.amount,
                named(&t.to),
                String::from_utf8_lossy(&t.memo)
            )?,
            Some(Payload::Call(c)) => write!(
                f,
                "  call {}.{:?} with {} bytes of arguments ({}), moving {}",
                named(&c.contract),
                c.method,
                c.args.len(),
                hex::encode(&c.args),
                c.value
            )?,
            Some(Payload::Deploy(d)) => write!(
                f,
                "  deploy code {} ({} bytes)",
                Hash32::of(&d.code),
                d.code.len()
            )?,
            Some(Payload::Admin(a)) => {
                write!(f, "  admin: {}", describe_admin(a.action.as_ref()))?
            }
            Some(Payload::Governance(g)) => match &g.action {
                Some(governance::Action::Propose(p)) => write!(
                    f,
                    "  governance: propose to {} (open {}, memo {:?})",
                    describe_admin(p.action.as_ref().and_then(|a| a.action.as_ref())),
                    if p.lifetime == 0 {
                        "as long as the policy allows".to_owned()
                    } else {
                        format!("{} heights", p.lifetime)
                    },
                    p.memo
                )?,
                Some(governance::Action::Approve(n)) => {
                    write!(f, "  governance: approve proposal {n}")?
                }
                None => write!(f, "  governance: no action")?,
            },
            Some(Payload::Keys(k)) => match &k.change {
                Some(key_change::Change::AddKey(w)) => write!(
                    f,
                    "  keys: add {} with weight {}",
                    hex::encode(&w.public_key),
                    w.weight
                )?,
                Some(key_change::Change::RemoveKey(key)) => {
                    write!(f, "  keys: remove {}", hex::encode(key))?
                }
                Some(key_change::Change::SetWeight(w)) => write!(
                    f,
                    "  keys: weight of {} becomes {}",
                    hex::encode(&w.public_key),
                    w.weight
                )?,
                Some(key_change::Change::SetThresholds(t)) => write!(
                    f,
                    "  keys: thresholds base {}, key management {}, deploy {}, large transfer {} above {}, contract call {}",
                    t.base, t.key_management, t.deploy, t.large_transfer, t.large_transfer_above, t.contract_call
                )?,
                None => write!(f, "  keys: no change")?,
            },
            None => write!(f, "  no payload")?,
        }
        if self.body.key_set.is_some() {
            write!(f, "\n  registers the account's key set")?;
        }
        let keys: Vec<String> = self.signed_by.iter().map(|k| k.to_hex()).collect();
        write!(f, "\n  signed by {}", keys.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_travels_as_text_and_a_cosigner_reads_it_in_words() {
        let sender = Keypair::from_secret(&[1; 32]);
        let cosigner = Keypair::from_secret(&[2; 32]);
        let to = Keypair::from_secret(&[3; 32]).address();
        let tx = sign(
            &body("c", sender.address(), 4, 1_000, transfer(to, 25, b"rent")),
            &sender,
        );
        let mut read = from_text(&format!("  {}  ", to_text(&tx))).expect("round trip");
        assert_eq!(read, tx);
        let words = describe(&read).expect("describes").to_string();
        assert!(words.contains(&format!("transfer 25 to {to}")), "{words}");
        assert!(
            words.contains("rent") && words.contains("nonce 4"),
            "{words}"
        );
        cosign(&mut read, &cosigner).expect("cosigns");
        assert_eq!(
            check_signatures(&read).expect("both verify"),
            vec![sender.public(), cosigner.public()]
        );
        let again = cosign(&mut read, &cosigner).expect_err("signed already");
        assert!(again.to_string().contains("already"), "{again}");
        // A signature that does not verify stops a co-signer.
        let mut forged = tx.clone();
        forged.signature = vec![0u8; 64].into();
        let refused = cosign(&mut forged, &cosigner).expect_err("bad signature");
        assert!(refused.to_string().contains("does not verify"), "{refused}");
        assert!(from_text("zz").is_err());
        assert!(from_text("0a02").is_err(), "a body that is not one");
    }
}
