//! Helpers for the crate's unit tests: a small chain in a temporary directory.

use std::sync::Arc;

use parking_lot::Mutex;
use quorate_genesis::Genesis;
use quorate_proto::tx::{sign, transfer_body};
use quorate_proto::v1::Transaction;
use quorate_proto::{Address, Keypair};

use crate::admission::Admission;
use crate::chain::Chain;
use crate::mempool::{Mempool, MempoolLimits};
use crate::storage::{Storage, StorageOptions};

/// Balance of each funded test account.
pub const BALANCE: u64 = 1_000_000;

/// A chain with one validator and funded accounts, on RocksDB in a temp dir.
pub struct TestChain {
    pub genesis: Genesis,
    pub validator: Keypair,
    pub accounts: Vec<Keypair>,
    pub chain: Arc<Chain>,
    pub mempool: Arc<Mutex<Mempool>>,
    pub admission: Admission,
    /// Last, so it is dropped after the database in it is closed (a database closed after its
    /// directory was removed writes its last files into a new one, left behind).
    pub dir: tempfile::TempDir,
}

pub fn limits() -> MempoolLimits {
    MempoolLimits {
        max_txs: 1000,
        max_bytes: 1 << 20,
        nonce_window: 16,
    }
}

impl TestChain {
    pub fn new(accounts: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut generated =
            quorate_genesis::generate("test-chain", 1, accounts, BALANCE, 1_000).expect("genesis");
        let engine =
            crate::contracts::engine_fingerprint(&generated.genesis.params).expect("engine");
        generated.genesis.engine_fingerprint = Some(engine.to_hex());
        Self::assemble(
            dir,
            generated.genesis,
            generated.validator_keys[0].clone(),
            generated.account_keys,
        )
    }

    /// Validator `index`'s chain of a generated genesis (several validators can share one).
    pub fn of_generated(generated: &quorate_genesis::Generated, index: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::assemble(
            dir,
            generated.genesis.clone(),
            generated.validator_keys[index].clone(),
            generated.account_keys.clone(),
        )
    }

    /// A chain on `genesis` (with no account keys) validated by `validator`.
    pub fn with_genesis(genesis: Genesis, validator: Keypair) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::assemble(dir, genesis, validator, Vec::new())
    }

    /// A chain on the database already in `dir` (one a snapshot was imported into).
    pub fn in_dir(
        dir: tempfile::TempDir,
        genesis: Genesis,
        validator: Keypair,
        accounts: Vec<Keypair>,
    ) -> Self {
        Self::assemble(dir, genesis, validator, accounts)
    }

    fn assemble(
        dir: tempfile::TempDir,
        genesis: Genesis,
        validator: Keypair,
        accounts: Vec<Keypair>,
    ) -> Self {
        let options = StorageOptions {
            sync_writes: false,
            ..Default::default()
        };
        Self::assemble_with(dir, genesis, validator, accounts, &options)
    }

    fn assemble_with(
        dir: tempfile::TempDir,
        genesis: Genesis,
        validator: Keypair,
        accounts: Vec<Keypair>,
        options: &StorageOptions,
    ) -> Self {
        // Opening the same directory again is what a restart does.
        let storage = Storage::open(dir.path(), options).expect("open storage");
        let chain = Arc::new(Chain::open(genesis.clone(), storage.clone()).expect("chain"));
        // Every test chain runs contract calls ahead (ADR 0020): its tests then check that
        // path's blocks too (they are the same as in order, which parallel_tests.rs proves).
        chain
            .contracts()
            .parallel()
            .set_mode(crate::execution::ParallelMode::Always);
        let mempool = Arc::new(Mutex::new(Mempool::new(limits())));
        let admission = Admission::new(
            genesis.chain_id.clone(),
            chain.params().clone(),
            storage,
            mempool.clone(),
            chain.contracts().clone(),
        );
        Self {
            dir,
            genesis,
            validator,
            accounts,
            chain,
            mempool,
            admission,
        }
    }

    /// Closes and reopens the database (as after a restart).
    pub fn reopen(self) -> Self {
        self.reopen_with(&StorageOptions {
            sync_writes: false,
            ..Default::default()
        })
    }

    /// Closes and reopens the database with `options` (a restart with another configuration).
    pub fn reopen_with(self, options: &StorageOptions) -> Self {
        let TestChain {
            dir,
            genesis,
            validator,
            accounts,
            chain,
            mempool,
            admission,
        } = self;
        drop((chain, mempool, admission));
        Self::assemble_with(dir, genesis, validator, accounts, options)
    }

    pub fn transfer(&self, from: usize, to: Address, amount: u64, nonce: u64) -> Transaction {
        let key = &self.accounts[from];
        let fuel = self.genesis.params.transfer_fuel;
        sign(
            &transfer_body(&self.genesis.chain_id, key, nonce, fuel, to, amount, vec![]),
            key,
        )
    }

    /// Signs `payload` from account `from`.
    pub fn signed(
        &self,
        from: usize,
        nonce: u64,
        fuel: u64,
        payload: quorate_proto::v1::tx_body::Payload,
    ) -> Transaction {
        let key = &self.accounts[from];
        sign(
            &quorate_proto::tx::body(&self.genesis.chain_id, key, nonce, fuel, payload),
            key,
        )
    }

    /// The receipt of a committed transaction.
    pub fn receipt(&self, tx: &Transaction) -> quorate_proto::v1::Receipt {
        let hash = quorate_proto::tx::tx_hash(&tx.body);
        self.chain
            .storage()
            .tx(&hash)
            .expect("read")
            .expect("committed")
            .receipt
            .expect("receipt")
    }

    pub fn addr(&self, i: usize) -> Address {
        self.accounts[i].address()
    }

    /// Admits `txs`, asserting every one is accepted.
    pub fn admit_ok(&self, txs: Vec<Transaction>) {
        for a in self.admission.admit(txs).expect("admit") {
            assert!(a.result.is_ok(), "refused: {:?}", a.result);
        }
    }

    /// Builds a block from the mempool and commits it with the validator's own signature
    /// (no consensus), as a one-validator chain would.
    pub fn produce(&self) -> Option<crate::storage::Head> {
        let params = self.chain.params_at(self.chain.head().height + 1);
        let candidates = self.mempool.lock().select(
            params.block_max_txs as usize,
            params.block_max_bytes as usize,
        );
        if candidates.is_empty() {
            return None;
        }
        let (block, dropped) = self
            .chain
            .propose(candidates, self.validator.public().0, 1)
            .expect("propose");
        self.mempool.lock().evict(dropped.iter().map(|(h, _)| h));
        if block.txs.is_empty() {
            return None;
        }
        let cert = self.chain.solo_certificate(&self.validator, 0, &block);
        let head = self.chain.commit(&block, &cert).expect("commit");
        self.mempool.lock().on_commit(&block.txs, &block.changes);
        Some(head)
    }
}
