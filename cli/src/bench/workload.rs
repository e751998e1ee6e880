//! What the load generator sends: the set-up each workload needs (reserves deposited,
//! certificate authorities named, specifications created) and the pre-signed measured
//! transactions, in rounds (every sender's k-th transaction before anyone's k+1-th).

use bytes::Bytes;
use prost::Message;
use quorate_genesis::system::{CERTIFICATES, REMITTANCE};
use quorate_proto::contracts::{certificates as certs, remittance as rm};
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::tx::{body, sign, transfer_body};
use quorate_proto::v1::tx_body::Payload;
use quorate_proto::v1::{key_change, Call, KeyChange, Thresholds, Transaction, WeightedKey};
use quorate_proto::Keypair;
use rayon::prelude::*;

/// What the measured transactions are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Native transfers of 1 token between the senders.
    Transfer,
    /// Remittance contract `remit` calls of 1 token covered by a reserve entry.
    Remittance,
    /// Certificate contract `issue_batch` calls (`--certs-per-tx` certificates each).
    Certs,
    /// Senders split 6:3:1 between transfers, remittances and certificate batches (at most 60
    /// of the latter; the rest send transfers).
    Mix,
    /// Native transfers of 1 token from 2-of-3 accounts: each sender adds two keys and sets
    /// its thresholds to 2 (set-up), then every transfer carries two signatures.
    Multisig,
}

/// Most senders of certificate batches (the contract names at most 64 authorities; genesis
/// names one).
pub const MAX_CERT_SENDERS: usize = 60;

/// What one sender sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Native transfers.
    Transfer,
    /// Remittances.
    Remittance,
    /// Certificate batches.
    Certs,
    /// Co-signed transfers from 2-of-3 accounts.
    Multisig,
}

impl Workload {
    /// The class of sender `i`.
    pub fn class(self, i: usize) -> Class {
        match self {
            Self::Transfer => Class::Transfer,
            Self::Remittance => Class::Remittance,
            Self::Certs => Class::Certs,
            Self::Multisig => Class::Multisig,
            Self::Mix => match i % 10 {
                0 if i / 10 < MAX_CERT_SENDERS => Class::Certs,
                0 => Class::Transfer,
                1..=3 => Class::Remittance,
                _ => Class::Transfer,
            },
        }
    }
}

/// Chain facts the transactions depend on.
pub struct ChainFacts {
    /// Chain id to sign for.
    pub chain_id: String,
    /// Fuel limit of a transfer.
    pub transfer_fuel: u64,
    /// Largest fuel limit allowed.
    pub max_fuel_per_tx: u64,
}

/// Reserve entry the remittance senders deposit into and allocate from.
const ENTRY: &str = "bench";
/// Fuel limit of a remittance call (a remit uses about 65,000).
const REMIT_FUEL: u64 = 200_000;
/// Fuel limit of set-up calls.
const SETUP_FUEL: u64 = 1_000_000;

fn call(contract: &str, method: &str, args: &impl Message, value: u64) -> Payload {
    Payload::Call(Call {
        contract: Bytes::copy_from_slice(&Address::of_system_contract(contract).0),
        method: method.to_owned(),
        args: Bytes::from(args.encode_to_vec()),
        value,
    })
}

/// The `n`-th extra key of a multi-key sender (derived from its public key: bench keys only).
fn extra_key(sender: &Keypair, n: u8) -> Keypair {
    let mut seed = sender.public().0.to_vec();
    seed.push(n);
    Keypair::from_secret(&Hash32::of(&seed).0)
}

/// A key change of `sender`'s own key set, signed by it alone.
fn key_change_tx(
    facts: &ChainFacts,
    sender: &Keypair,
    nonce: u64,
    change: key_change::Change,
) -> Transaction {
    let p = Payload::Keys(KeyChange {
        change: Some(change),
    });
    sign(
        &body(&facts.chain_id, sender, nonce, facts.transfer_fuel, p),
        sender,
    )
}

/// Measured transactions of sender `i` (nonces from `first_nonce`).
pub struct Plan {
    /// Workload.
    pub workload: Workload,
    /// Measured transactions per sender.
    pub per_sender: Vec<usize>,
    /// Certificates per `issue_batch`.
    pub certs_per_tx: usize,
    /// Whom a transaction pays: sender `i`'s `k`-th pays sender `i + payee_offset + k`.
    pub payee_offset: usize,
}

impl Plan {
    /// `txs` transactions spread over `senders` senders.
    pub fn new(workload: Workload, txs: usize, senders: usize, certs_per_tx: usize) -> Self {
        let per_sender = (0..senders)
            .map(|i| txs / senders + usize::from(i < txs % senders))
            .collect();
        Self {
            workload,
            per_sender,
            certs_per_tx,
            payee_offset: 1,
        }
    }

    /// Set-up, first step: the admin names every certificates sender an authority (nonces
    /// from `admin_nonce`), and each remittance sender deposits what its remittances need.
    pub fn setup_roles(
        &self,
        facts: &ChainFacts,
        admin: &Keypair,
        admin_nonce: u64,
        senders: &[Keypair],
    ) -> Vec<Transaction> {
        let mut out = Vec::new();
        let mut nonce = admin_nonce;
        for (i, s) in senders.iter().enumerate() {
            match self.workload.class(i) {
                Class::Certs => {
                    let args = certs::AuthorityArgs {
                        account: Bytes::copy_from_slice(&s.address().0),
                    };
                    let p = call(CERTIFICATES, "add_authority", &args, 0);
                    out.push(sign(
                        &body(&facts.chain_id, admin, nonce, SETUP_FUEL, p),
                        admin,
                    ));
                    nonce += 1;
                }
                Class::Remittance => {
                    let args = rm::DepositArgs {
                        entry: ENTRY.into(),
                    };
                    let value = self.per_sender[i] as u64 + 1;
                    let p = call(REMITTANCE, "deposit", &args, value);
                    out.push(sign(&body(&facts.chain_id, s, 0, SETUP_FUEL, p), s));
                }
                Class::Multisig => {
                    let weighted = |k: &Keypair| WeightedKey {
                        public_key: Bytes::copy_from_slice(&k.public().0),
                        weight: 1,
                    };
                    for n in [1, 2] {
                        let change = key_change::Change::AddKey(weighted(&extra_key(s, n)));
                        out.push(key_change_tx(facts, s, u64::from(n) - 1, change));
                    }
                }
                Class::Transfer => {}
            }
        }
        out
    }

    /// Set-up, second step for 2-of-3 senders: thresholds of 2, once the keys are in (a key
    /// change is checked against the committed key set at admission).
    pub fn setup_thresholds(&self, facts: &ChainFacts, senders: &[Keypair]) -> Vec<Transaction> {
        senders
            .iter()
            .enumerate()
            .filter(|(i, _)| self.workload.class(*i) == Class::Multisig)
            .map(|(_, s)| {
                let t = Thresholds {
                    base: 2,
                    key_management: 2,
                    ..Thresholds::default()
                };
                key_change_tx(facts, s, 2, key_change::Change::SetThresholds(t))
            })
            .collect()
    }

    /// Set-up, second step: each certificates sender creates its specification.
    pub fn setup_specs(&self, facts: &ChainFacts, senders: &[Keypair]) -> Vec<Transaction> {
        senders
            .iter()
            .enumerate()
            .filter(|(i, _)| self.workload.class(*i) == Class::Certs)
            .map(|(i, s)| {
                let args = certs::CreateSpecArgs {
                    name: format!("bench-{i}"),
                    schema: "bench/v1".into(),
                    validity_ms: 365 * 24 * 3_600_000,
                };
                let p = call(CERTIFICATES, "create_spec", &args, 0);
                sign(&body(&facts.chain_id, s, 0, SETUP_FUEL, p), s)
            })
            .collect()
    }

    /// The first nonce of sender `i`'s measured transactions.
    fn first_nonce(&self, i: usize) -> u64 {
        match self.workload.class(i) {
            Class::Transfer => 0,
            Class::Remittance | Class::Certs => 1,
            Class::Multisig => 3,
        }
    }

    /// Every measured transaction, signed (in parallel), in rounds; with its sender's index.
    /// `spec_of[i]` is sender `i`'s specification id (certificates senders).
    pub fn measured(
        &self,
        facts: &ChainFacts,
        senders: &[Keypair],
        spec_of: &[u64],
    ) -> Vec<(usize, Transaction)> {
        let rounds = self.per_sender.iter().copied().max().unwrap_or(0);
        let slots: Vec<(usize, usize)> = (0..rounds)
            .flat_map(|k| {
                (0..senders.len())
                    .filter(move |&i| k < self.per_sender[i])
                    .map(move |i| (i, k))
                    .collect::<Vec<_>>()
            })
            .collect();
        slots
            .par_iter()
            .map(|&(i, k)| (i, self.one(facts, senders, spec_of, i, k)))
            .collect()
    }

    /// Sender `i`'s `k`-th measured transaction.
    fn one(
        &self,
        facts: &ChainFacts,
        senders: &[Keypair],
        spec_of: &[u64],
        i: usize,
        k: usize,
    ) -> Transaction {
        let key = &senders[i];
        let nonce = self.first_nonce(i) + k as u64;
        let n = senders.len();
        let offset = self.payee_offset % n;
        let other = senders[(i + offset + k) % n].address();
        let other = if other == key.address() {
            senders[(i + offset + 1 + k) % n].address()
        } else {
            other
        };
        let b = match self.workload.class(i) {
            Class::Transfer | Class::Multisig => transfer_body(
                &facts.chain_id,
                key,
                nonce,
                facts.transfer_fuel,
                other,
                1,
                Vec::new(),
            ),
            Class::Remittance => {
                let args = rm::RemitArgs {
                    remittee: Bytes::copy_from_slice(&other.0),
                    amount: 1,
                    allocations: vec![rm::Allocation {
                        entry: ENTRY.into(),
                        amount: 1,
                    }],
                    memo: String::new(),
                };
                let p = call(REMITTANCE, "remit", &args, 0);
                body(&facts.chain_id, key, nonce, REMIT_FUEL, p)
            }
            Class::Certs => {
                let certificates = (0..self.certs_per_tx)
                    .map(|j| {
                        let seed = [i as u64, k as u64, j as u64]
                            .map(u64::to_le_bytes)
                            .concat();
                        let subject = &Hash32::of(&seed).0[..20];
                        certs::CertificateRequest {
                            subject: Bytes::copy_from_slice(subject),
                            data: Bytes::copy_from_slice(&seed[16..]),
                        }
                    })
                    .collect();
                let args = certs::IssueBatchArgs {
                    spec_id: spec_of[i],
                    certificates,
                };
                let fuel = (100_000 + 15_000 * self.certs_per_tx as u64).min(facts.max_fuel_per_tx);
                let p = call(CERTIFICATES, "issue_batch", &args, 0);
                body(&facts.chain_id, key, nonce, fuel, p)
            }
        };
        let mut tx = sign(&b, key);
        if self.workload.class(i) == Class::Multisig {
            quorate_proto::tx::cosign(&mut tx, &extra_key(key, 1));
        }
        tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_spread_transactions_in_rounds_with_consecutive_nonces() {
        let facts = ChainFacts {
            chain_id: "t".into(),
            transfer_fuel: 1_000,
            max_fuel_per_tx: 100_000_000,
        };
        let senders: Vec<Keypair> = (0..10).map(|_| Keypair::generate()).collect();
        let plan = Plan::new(Workload::Mix, 25, 10, 3);
        assert_eq!(plan.per_sender.iter().sum::<usize>(), 25);
        assert_eq!(plan.per_sender[0], 3);
        assert_eq!(plan.per_sender[9], 2);
        let txs = plan.measured(&facts, &senders, &[7; 10]);
        assert_eq!(txs.len(), 25);
        // Round 0 has every sender once, in order.
        let first: Vec<usize> = txs.iter().take(10).map(|(i, _)| *i).collect();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        // Sender 0 (certificates) starts after its set-up nonce; sender 5 (transfers) at 0.
        let nonces = |s: usize| -> Vec<u64> {
            txs.iter()
                .filter(|(i, _)| *i == s)
                .map(|(_, t)| {
                    quorate_proto::v1::TxBody::decode(t.body.clone())
                        .expect("body")
                        .nonce
                })
                .collect()
        };
        assert_eq!(nonces(0), vec![1, 2, 3]);
        assert_eq!(nonces(5), vec![0, 1]);
        let admin = Keypair::generate();
        let roles = plan.setup_roles(&facts, &admin, 4, &senders);
        // Sender 0 is named an authority; senders 1-3 deposit.
        assert_eq!(roles.len(), 4);
        assert_eq!(plan.setup_specs(&facts, &senders).len(), 1);
    }
}
