//! Execution: applies transactions to account state and builds the pre-processed block whose
//! header carries the resulting state and receipt roots.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use quorate_genesis::ChainParams;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::merkle;
use quorate_proto::v1::{BlockHeader, ExecStatus, Receipt};

use crate::admission::{Payload, VerifiedTx};
use crate::state_root::LtHash;
use crate::storage::{Account, Head, Storage, StorageError};

/// A block executed on top of the head, ready to be certified and committed.
#[derive(Debug)]
pub struct ExecutedBlock {
    /// Decoded header.
    pub header: BlockHeader,
    /// Encoded header, as hashed and signed.
    pub header_bytes: Bytes,
    /// blake3 of `header_bytes`.
    pub hash: Hash32,
    /// Transactions in block order.
    pub txs: Vec<Arc<VerifiedTx>>,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// Accounts changed by the block with their new state, sorted by address.
    pub changes: Vec<(Address, Account)>,
    /// State accumulator after the block.
    pub lthash: LtHash,
}

/// Why a transaction cannot be part of a block at all (as opposed to failing with a receipt).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidTx {
    /// Nonce is not the account's next.
    #[error("nonce {got} of {account} is not its next nonce {expected}")]
    Nonce {
        /// Account.
        account: Address,
        /// Offered.
        got: u64,
        /// Expected.
        expected: u64,
    },
    /// Cannot pay the fee for the fuel it uses.
    #[error("account {account} cannot pay fee {fee} from balance {balance}")]
    CannotPayFee {
        /// Account.
        account: Address,
        /// Fee.
        fee: u64,
        /// Balance.
        balance: u64,
    },
}

/// Applies transactions over committed state, remembering the original of each touched
/// account so the state accumulator can be updated in O(changes).
pub struct StateOverlay<'a> {
    storage: &'a Storage,
    params: &'a ChainParams,
    accounts: HashMap<Address, (Account, Account)>,
}

impl<'a> StateOverlay<'a> {
    /// An overlay on the committed state.
    pub fn new(storage: &'a Storage, params: &'a ChainParams) -> Self {
        Self {
            storage,
            params,
            accounts: HashMap::new(),
        }
    }

    /// Loads every account `txs` can touch with one multi-get.
    pub fn prefetch(&mut self, txs: &[Arc<VerifiedTx>]) -> Result<(), StorageError> {
        let mut addrs: Vec<Address> = Vec::with_capacity(txs.len() * 2);
        for t in txs {
            addrs.push(t.signer);
            let Payload::Transfer { to, .. } = t.payload;
            addrs.push(to);
        }
        addrs.sort_unstable();
        addrs.dedup();
        addrs.retain(|a| !self.accounts.contains_key(a));
        for (addr, acct) in addrs.iter().zip(self.storage.accounts(&addrs)?) {
            self.accounts.insert(*addr, (acct, acct));
        }
        Ok(())
    }

    fn get(&mut self, addr: &Address) -> Result<Account, StorageError> {
        if let Some((_, cur)) = self.accounts.get(addr) {
            return Ok(*cur);
        }
        let acct = self.storage.account(addr)?;
        self.accounts.insert(*addr, (acct, acct));
        Ok(acct)
    }

    fn set(&mut self, addr: Address, acct: Account) {
        self.accounts.entry(addr).or_insert((acct, acct)).1 = acct;
    }

    /// Applies one transaction: checks nonce and fee, charges the fee, bumps the nonce, then
    /// runs the payload. A payload failure still charges the fee and yields a failed receipt;
    /// an `InvalidTx` changes nothing.
    pub fn apply(&mut self, tx: &VerifiedTx) -> Result<Result<Receipt, InvalidTx>, StorageError> {
        let mut signer = self.get(&tx.signer)?;
        if tx.nonce != signer.nonce {
            return Ok(Err(InvalidTx::Nonce {
                account: tx.signer,
                got: tx.nonce,
                expected: signer.nonce,
            }));
        }
        let Payload::Transfer { to, amount } = tx.payload;
        let fuel_needed = self.params.transfer_fuel;
        // Out of fuel (admission refuses such limits; a proposer could still include one):
        // the whole limit is charged. Bounded: genesis checks max_fuel_per_tx × fuel_price.
        let fuel_used = fuel_needed.min(tx.fuel_limit);
        let fee = fuel_used.saturating_mul(self.params.fuel_price);
        if signer.balance < fee {
            return Ok(Err(InvalidTx::CannotPayFee {
                account: tx.signer,
                fee,
                balance: signer.balance,
            }));
        }
        signer.balance -= fee;
        signer.nonce += 1;
        if fuel_needed > tx.fuel_limit {
            self.set(tx.signer, signer);
            let msg = format!("transfer needs {fuel_needed} fuel");
            return Ok(Ok(receipt(tx, ExecStatus::OutOfFuel, fuel_used, fee, msg)));
        }
        if signer.balance < amount {
            let msg = format!(
                "balance {} after fee is below amount {amount}",
                signer.balance
            );
            self.set(tx.signer, signer);
            return Ok(Ok(receipt(
                tx,
                ExecStatus::InsufficientFunds,
                fuel_used,
                fee,
                msg,
            )));
        }
        signer.balance -= amount;
        self.set(tx.signer, signer);
        let mut recipient = self.get(&to)?;
        // Total supply fits in u64 (genesis checks it and fees only burn), so this cannot overflow.
        recipient.balance = recipient
            .balance
            .checked_add(amount)
            .expect("supply fits in u64");
        self.set(to, recipient);
        Ok(Ok(receipt(
            tx,
            ExecStatus::Success,
            fuel_used,
            fee,
            String::new(),
        )))
    }

    /// The changed accounts (sorted) and the accumulator updated from `base`.
    pub fn finish(self, mut lthash: LtHash) -> (Vec<(Address, Account)>, LtHash) {
        let mut changes: Vec<(Address, Account)> = self
            .accounts
            .into_iter()
            .filter(|(_, (orig, cur))| orig != cur)
            .map(|(addr, (orig, cur))| {
                if !orig.is_empty() {
                    lthash.remove(&addr.0, &orig.to_bytes());
                }
                lthash.insert(&addr.0, &cur.to_bytes());
                (addr, cur)
            })
            .collect();
        changes.sort_unstable_by_key(|(a, _)| *a);
        (changes, lthash)
    }
}

fn receipt(
    tx: &VerifiedTx,
    status: ExecStatus,
    fuel_used: u64,
    fee: u64,
    error: String,
) -> Receipt {
    Receipt {
        tx_hash: Bytes::copy_from_slice(&tx.hash.0),
        status: status as i32,
        fuel_used,
        fee,
        error,
        events: Vec::new(),
    }
}

/// Everything needed to build a block on top of `parent`.
pub struct BlockContext<'a> {
    /// Chain id.
    pub chain_id: &'a str,
    /// Chain parameters.
    pub params: &'a ChainParams,
    /// The head the block extends.
    pub parent: &'a Head,
    /// State accumulator after `parent`.
    pub parent_lthash: &'a LtHash,
    /// Proposer's public key.
    pub proposer: [u8; 32],
    /// Block time, ms since the epoch (already clamped to be ≥ the parent's).
    pub time_ms: u64,
}

/// Executes `candidates` in order on top of the parent, leaving out the ones that cannot be
/// included, and builds the header with the resulting roots (the proposer's side).
pub fn build_block(
    storage: &Storage,
    ctx: &BlockContext<'_>,
    candidates: Vec<Arc<VerifiedTx>>,
) -> Result<(ExecutedBlock, Vec<(Hash32, InvalidTx)>), StorageError> {
    let mut overlay = StateOverlay::new(storage, ctx.params);
    overlay.prefetch(&candidates)?;
    let mut txs = Vec::with_capacity(candidates.len());
    let mut receipts = Vec::with_capacity(candidates.len());
    let mut dropped = Vec::new();
    for tx in candidates {
        match overlay.apply(&tx)? {
            Ok(r) => {
                receipts.push(r);
                txs.push(tx);
            }
            Err(e) => dropped.push((tx.hash, e)),
        }
    }
    let (changes, lthash) = overlay.finish(ctx.parent_lthash.clone());
    Ok((seal(ctx, txs, receipts, changes, lthash), dropped))
}

/// Re-executes a proposed block's transactions and checks its header (the validator's side).
/// Every transaction must be includable, and the roots must match.
pub fn validate_block(
    storage: &Storage,
    ctx: &BlockContext<'_>,
    header: &BlockHeader,
    txs: Vec<Arc<VerifiedTx>>,
) -> Result<Result<ExecutedBlock, String>, StorageError> {
    let mut overlay = StateOverlay::new(storage, ctx.params);
    overlay.prefetch(&txs)?;
    let mut receipts = Vec::with_capacity(txs.len());
    for tx in &txs {
        match overlay.apply(tx)? {
            Ok(r) => receipts.push(r),
            Err(e) => return Ok(Err(format!("transaction {}: {e}", tx.hash))),
        }
    }
    let (changes, lthash) = overlay.finish(ctx.parent_lthash.clone());
    let mine = seal(
        &BlockContext {
            time_ms: header.time_ms,
            proposer: ctx.proposer,
            ..*ctx
        },
        txs,
        receipts,
        changes,
        lthash,
    );
    if mine.header != *header {
        return Ok(Err(format!(
            "header mismatch: state root {} vs {}, receipts root {} vs {}",
            hex::encode(&header.state_root),
            hex::encode(&mine.header.state_root),
            hex::encode(&header.receipts_root),
            hex::encode(&mine.header.receipts_root)
        )));
    }
    Ok(Ok(mine))
}

fn seal(
    ctx: &BlockContext<'_>,
    txs: Vec<Arc<VerifiedTx>>,
    receipts: Vec<Receipt>,
    changes: Vec<(Address, Account)>,
    lthash: LtHash,
) -> ExecutedBlock {
    let tx_hashes: Vec<Hash32> = txs.iter().map(|t| t.hash).collect();
    let receipt_hashes: Vec<Hash32> = receipts
        .iter()
        .map(|r| Hash32::of(&r.encode_to_vec()))
        .collect();
    let header = BlockHeader {
        chain_id: ctx.chain_id.to_owned(),
        height: ctx.parent.height + 1,
        parent_hash: Bytes::copy_from_slice(&ctx.parent.hash.0),
        proposer: Bytes::copy_from_slice(&ctx.proposer),
        time_ms: ctx.time_ms,
        tx_root: Bytes::copy_from_slice(&merkle::root(&tx_hashes).0),
        state_root: Bytes::copy_from_slice(&lthash.root().0),
        receipts_root: Bytes::copy_from_slice(&merkle::root(&receipt_hashes).0),
        tx_count: txs.len() as u32,
    };
    let header_bytes = Bytes::from(header.encode_to_vec());
    let hash = Hash32::of(&header_bytes);
    ExecutedBlock {
        header,
        header_bytes,
        hash,
        txs,
        receipts,
        changes,
        lthash,
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{TestChain, BALANCE};
    use quorate_proto::v1::ExecStatus;

    #[test]
    fn validator_reexecution_accepts_honest_block_and_rejects_tampered_roots() {
        let t = TestChain::new(2);
        t.admit_ok(vec![
            t.transfer(0, t.addr(1), 10, 0),
            t.transfer(1, t.addr(0), 3, 0),
        ]);
        let candidates = t.mempool.lock().select(10, 1 << 20);
        let (block, dropped) = t
            .chain
            .propose(candidates, t.validator.public().0, 2_000)
            .expect("propose");
        assert!(dropped.is_empty());
        let ok = t
            .chain
            .validate(&block.header, block.txs.clone())
            .expect("validate");
        assert_eq!(ok.map(|b| b.hash), Ok(block.hash));
        let mut bad = block.header.clone();
        bad.state_root = bytes::Bytes::copy_from_slice(&[0; 32]);
        assert!(t
            .chain
            .validate(&bad, block.txs.clone())
            .expect("validate")
            .is_err());
        let mut reordered = block.txs.clone();
        reordered.reverse();
        assert!(t
            .chain
            .validate(&block.header, reordered)
            .expect("validate")
            .is_err());
    }

    #[test]
    fn transfer_beyond_balance_fails_with_receipt_charging_only_the_fee() {
        // Two mempools of a cluster can each admit one of two transfers that together
        // overdraw; the block still executes both and the second fails with a receipt.
        let t = TestChain::new(2);
        let fee = t.genesis.params.transfer_fuel * t.genesis.params.fuel_price;
        let verify = |tx| {
            std::sync::Arc::new(
                crate::admission::verify_one(tx, &t.genesis.chain_id, &t.genesis.params)
                    .expect("valid"),
            )
        };
        let first = verify(t.transfer(0, t.addr(1), BALANCE - 2 * fee, 0));
        let second = verify(t.transfer(0, t.addr(1), 10, 1));
        let (block, dropped) = t
            .chain
            .propose(vec![first, second], t.validator.public().0, 2_000)
            .expect("propose");
        assert!(dropped.is_empty());
        assert_eq!(block.receipts[0].status, ExecStatus::Success as i32);
        assert_eq!(
            block.receipts[1].status,
            ExecStatus::InsufficientFunds as i32
        );
        assert_eq!(block.receipts[1].fee, fee);
        assert!(
            block.receipts[1].error.contains("below amount 10"),
            "{}",
            block.receipts[1].error
        );
        let changes: std::collections::HashMap<_, _> = block.changes.iter().cloned().collect();
        assert_eq!(
            changes[&t.addr(0)],
            crate::storage::Account {
                balance: 0,
                nonce: 2
            }
        );
        assert_eq!(changes[&t.addr(1)].balance, BALANCE + BALANCE - 2 * fee);
    }

    #[test]
    fn stale_nonce_is_left_out_of_a_proposal() {
        let t = TestChain::new(2);
        t.admit_ok(vec![t.transfer(1, t.addr(0), 5, 0)]);
        let mut candidates = t.mempool.lock().select(10, 1 << 20);
        candidates.push(candidates[0].clone());
        let (block, dropped) = t
            .chain
            .propose(candidates, t.validator.public().0, 3_000)
            .expect("propose");
        assert_eq!(block.txs.len(), 1);
        assert_eq!(dropped.len(), 1, "the repeated nonce is left out");
        assert_eq!(block.receipts[0].status, ExecStatus::Success as i32);
    }
}
