//! Admission, the "first security verification": decode limits, chain id, signer, payload and
//! fuel checks, parallel batch signature verification ([`crate::verified_tx`]), then nonce and
//! balance checks against committed state and the mempool.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::tx::DecodedTx;
use quorate_proto::v1::{KeySet, Transaction};

use crate::chain_params::ParamBook;
use crate::contracts::ContractRuntime;
use crate::mempool::Mempool;
use crate::storage::{Storage, StorageError};
use crate::verified_tx::authority::{self, deciding_set};
use crate::verified_tx::{
    check_authority, check_stateless, decode_limit, verify_signatures, AdmissionError, Payload,
    RejectionLog, VerifiedTx,
};

/// Outcome of admitting one transaction: its hash (when it could be computed) and the result.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Hash of the body, if the transaction decoded far enough.
    pub hash: Option<Hash32>,
    /// Ok when the transaction entered the mempool.
    pub result: Result<(), AdmissionError>,
}

/// The admission pipeline of a node.
pub struct Admission {
    chain_id: String,
    params: Arc<ParamBook>,
    storage: Arc<Storage>,
    mempool: Arc<Mutex<Mempool>>,
    contracts: Arc<ContractRuntime>,
    rejections: Mutex<RejectionLog>,
}

impl Admission {
    /// An admission pipeline feeding `mempool`, judging by the parameters `params` gives the
    /// next height.
    pub fn new(
        chain_id: String,
        params: Arc<ParamBook>,
        storage: Arc<Storage>,
        mempool: Arc<Mutex<Mempool>>,
        contracts: Arc<ContractRuntime>,
    ) -> Self {
        Self {
            chain_id,
            params,
            storage,
            mempool,
            contracts,
            rejections: Mutex::new(RejectionLog::new(10_000)),
        }
    }

    /// Contract rules checked against committed state after the signature: deploys carry
    /// valid code, and machine code only from a trusted deployer and the chain's engine;
    /// calls name a deployed contract; admin actions come from the admin, governance steps from
    /// a member of the policy. (A block's
    /// execution decides the same questions deterministically; this spares the chain
    /// transactions that would only fail.)
    fn check_contract_rules(
        &self,
        v: &VerifiedTx,
    ) -> Result<Result<(), AdmissionError>, StorageError> {
        // An upgrade's code (sent by an admin or proposed to the members) is checked as a
        // deploy's is, before it costs a block or lands in a proposal's record.
        if let (Payload::Admin(_) | Payload::Governance(_), Some(code)) =
            (&v.payload, v.payload.code().filter(|c| !c.is_empty()))
        {
            if let Err(e) = self.contracts.vm().validate(code) {
                return Ok(Err(AdmissionError::InvalidCode(e.to_string())));
            }
        }
        let verdict = match &v.payload {
            Payload::Transfer { .. } | Payload::Keys(_) => Ok(()),
            Payload::Deploy {
                code, machine_code, ..
            } => {
                if let Some((_, fingerprint)) = machine_code {
                    if !self.storage.is_trusted_deployer(&v.signer)? {
                        return Ok(Err(AdmissionError::NotTrusted(v.signer)));
                    }
                    let chain = self.storage.chain_engine()?;
                    if chain != Some(*fingerprint) {
                        return Ok(Err(AdmissionError::EngineMismatch {
                            got: hex::encode(fingerprint),
                            expected: chain.map_or_else(
                                || "none: this chain takes no machine code".into(),
                                hex::encode,
                            ),
                        }));
                    }
                }
                self.contracts
                    .vm()
                    .validate(code)
                    .map(|_| ())
                    .map_err(|e| AdmissionError::InvalidCode(e.to_string()))
            }
            Payload::Call { contract, .. } => match self.storage.contract(contract)? {
                Some(_) => Ok(()),
                None => Err(AdmissionError::UnknownContract(*contract)),
            },
            Payload::Governance(_) => {
                let policy = self.storage.governance()?;
                match policy {
                    Some(p) if quorate_proto::governance::is_member(&p, &v.signer.0) => Ok(()),
                    p => Err(AdmissionError::NotMember {
                        signer: v.signer,
                        governed: p.is_some(),
                    }),
                }
            }
            Payload::Admin(_) => {
                let admin = self.storage.admin()?;
                if admin == Some(v.signer) {
                    Ok(())
                } else {
                    Err(AdmissionError::NotAdmin {
                        signer: v.signer,
                        admin,
                    })
                }
            }
        };
        // Once the sender may act at all: an activation (or a proposal or approval of one) of
        // a version this release cannot run.
        if verdict.is_ok() {
            if let Some(version) = self.activated_version(&v.payload)? {
                if version > crate::protocol::SUPPORTED {
                    return Ok(Err(AdmissionError::UnsupportedProtocol {
                        version,
                        supported: crate::protocol::SUPPORTED,
                    }));
                }
            }
        }
        Ok(verdict)
    }

    /// The protocol version `payload` activates, sent by the admin, proposed, or approved
    /// (the proposal read from committed state; an approval of a proposal still pending is
    /// not seen): a node refuses to help activate a version its release cannot run (ADR 0019).
    fn activated_version(&self, payload: &Payload) -> Result<Option<u32>, StorageError> {
        use crate::verified_tx::{AdminAction, GovAction};
        Ok(match payload {
            Payload::Admin(AdminAction::ActivateProtocol { version, height })
            | Payload::Governance(GovAction::Propose {
                action: AdminAction::ActivateProtocol { version, height },
                ..
            }) if *height > 0 => Some(*version),
            Payload::Governance(GovAction::Approve(n)) => self
                .storage
                .proposal(*n)?
                .and_then(|r| r.action)
                .and_then(|a| match a.action {
                    Some(quorate_proto::v1::admin::Action::ActivateProtocol(p)) if p.height > 0 => {
                        Some(p.version)
                    }
                    _ => None,
                }),
            _ => None,
        })
    }

    /// Admits a batch of transactions: stateless checks, one parallel signature batch, then
    /// stateful checks and insertion in submission order. Blocking (CPU-bound): call from a
    /// blocking context.
    pub fn admit(&self, txs: Vec<Transaction>) -> Result<Vec<Admitted>, StorageError> {
        // A node stopped before a protocol version it does not support keeps nothing, from a
        // client or a peer (ADR 0019).
        if let Some(halt) = self.params.halt() {
            return Ok(txs
                .iter()
                .map(|tx| Admitted {
                    hash: Some(quorate_proto::tx::tx_hash(&tx.body)),
                    result: Err(AdmissionError::Halted(halt.clone())),
                })
                .collect());
        }
        let params = self.params.next();
        let max = decode_limit(&params);
        let mut out: Vec<Admitted> = Vec::with_capacity(txs.len());
        let mut candidates: Vec<(usize, VerifiedTx)> = Vec::with_capacity(txs.len());
        for tx in txs {
            let size = prost::Message::encoded_len(&tx);
            if size > max {
                // Still name the transaction, so the client can match the refusal.
                let hash = quorate_proto::tx::tx_hash(&tx.body);
                out.push(Admitted {
                    hash: Some(hash),
                    result: Err(AdmissionError::Oversized { size, max }),
                });
                continue;
            }
            match DecodedTx::from_transaction(tx, max) {
                Err(e) => out.push(Admitted {
                    hash: None,
                    result: Err(e.into()),
                }),
                Ok(d) => {
                    let hash = d.hash;
                    match check_stateless(d, &self.chain_id, &params) {
                        Ok(v) => {
                            candidates.push((out.len(), v));
                            out.push(Admitted {
                                hash: Some(hash),
                                result: Ok(()),
                            });
                        }
                        Err(e) => out.push(Admitted {
                            hash: Some(hash),
                            result: Err(e),
                        }),
                    }
                }
            }
        }
        let candidates = self.keys_belong(candidates, &mut out)?;
        let refs: Vec<&VerifiedTx> = candidates.iter().map(|(_, v)| v).collect();
        let valid = verify_signatures(&refs);
        let mut verified = Vec::with_capacity(candidates.len());
        for ((slot, v), ok) in candidates.into_iter().zip(valid) {
            match ok {
                Ok(()) => match self.check_contract_rules(&v)? {
                    Ok(()) => verified.push((slot, v)),
                    Err(e) => out[slot].result = Err(e),
                },
                Err(key) => out[slot].result = Err(AdmissionError::BadSignature(key)),
            }
        }
        if !verified.is_empty() {
            let signers: Vec<Address> = verified.iter().map(|(_, v)| v.signer).collect();
            let mut pool = self.mempool.lock();
            // Read under the mempool lock: a commit prunes the mempool under the same lock after
            // writing, so a nonce read here is never older than the mempool's view.
            let accounts = self.storage.accounts(&signers)?;
            // Key sets only for the accounts that have one: a single-key account costs no read.
            let keyed: Vec<Address> = signers
                .iter()
                .zip(&accounts)
                .filter(|(_, a)| a.keyed)
                .map(|(s, _)| *s)
                .collect();
            let sets: HashMap<Address, KeySet> = if keyed.is_empty() {
                HashMap::new()
            } else {
                keyed
                    .iter()
                    .copied()
                    .zip(self.storage.key_sets(&keyed)?)
                    .filter_map(|(a, s)| Some((a, s?)))
                    .collect()
            };
            for ((slot, v), acct) in verified.into_iter().zip(accounts) {
                let committed = sets.get(&v.signer).filter(|_| acct.keyed);
                if let Err(e) = check_authority(&v, committed) {
                    out[slot].result = Err(e);
                    continue;
                }
                if let Err(e) = pool.insert(Arc::new(v), acct, params.fuel_price) {
                    out[slot].result = Err(e);
                }
            }
        }
        let mut log = self.rejections.lock();
        let m = crate::metrics::get();
        let mut admitted = 0u64;
        for a in &out {
            match (a.hash, &a.result) {
                (_, Ok(())) => admitted += 1,
                (hash, Err(e)) => {
                    m.txs_refused
                        .get_or_create(&crate::metrics::CodeLabel {
                            code: e
                                .code()
                                .as_str_name()
                                .trim_start_matches("REJECT_CODE_")
                                .to_owned(),
                        })
                        .inc();
                    if let Some(h) = hash {
                        log.record(h, e.clone());
                    }
                }
            }
        }
        m.txs_admitted.inc_by(admitted);
        Ok(out)
    }

    /// Keeps the candidates whose signing keys are all their account's (against committed
    /// state), before any signature is verified: a transaction carrying cosignatures by keys
    /// the account does not hold is refused at the cost of a read, not of 16 verifications
    /// (issue 25). Only transactions with cosignatures are read for; the check is repeated,
    /// with the weights, under the mempool lock.
    fn keys_belong(
        &self,
        candidates: Vec<(usize, VerifiedTx)>,
        out: &mut [Admitted],
    ) -> Result<Vec<(usize, VerifiedTx)>, StorageError> {
        let cosigned: Vec<Address> = candidates
            .iter()
            .filter(|(_, v)| !v.tx.cosignatures.is_empty())
            .map(|(_, v)| v.signer)
            .collect();
        if cosigned.is_empty() {
            return Ok(candidates);
        }
        let accounts = self.storage.accounts(&cosigned)?;
        let keyed: Vec<Address> = cosigned
            .iter()
            .zip(&accounts)
            .filter(|(_, a)| a.keyed)
            .map(|(s, _)| *s)
            .collect();
        let sets: HashMap<Address, KeySet> = keyed
            .iter()
            .copied()
            .zip(self.storage.key_sets(&keyed)?)
            .filter_map(|(a, s)| Some((a, s?)))
            .collect();
        Ok(candidates
            .into_iter()
            .filter(|(slot, v)| {
                if v.tx.cosignatures.is_empty() {
                    return true;
                }
                match authority::members(v, deciding_set(v, sets.get(&v.signer))) {
                    Ok(_) => true,
                    Err(e) => {
                        out[*slot].result = Err(e.into());
                        false
                    }
                }
            })
            .collect())
    }

    /// Decodes raw bytes of a `Transaction` and admits it.
    pub fn admit_bytes(&self, bytes: Bytes) -> Result<Admitted, StorageError> {
        use prost::Message;
        match Transaction::decode(bytes) {
            Err(e) => Ok(Admitted {
                hash: None,
                result: Err(AdmissionError::Malformed(e.to_string())),
            }),
            Ok(tx) => Ok(self.admit(vec![tx])?.remove(0)),
        }
    }

    /// Why `hash` was refused recently, if it was.
    pub fn rejection(&self, hash: &Hash32) -> Option<AdmissionError> {
        self.rejections.lock().get(hash)
    }
}

#[cfg(test)]
mod tests;
