//! The state a contract call reads and writes, as the engine sees it. The node implements it
//! over its block overlay; every write must be undoable back to a checkpoint.

use quorate_proto::crypto::{Address, Hash32};

/// A position in the backend's undo journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Checkpoint(pub usize);

/// Contract-visible state. Errors are storage failures: they abort the whole block, never
/// become a receipt.
pub trait Backend: Send + 'static {
    /// A storage failure.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Value stored under `key` by `contract`.
    fn storage_get(
        &mut self,
        contract: &Address,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Stores `value` under `key` for `contract`; `None` removes it. Returns whether a value
    /// was there before.
    fn storage_set(
        &mut self,
        contract: &Address,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<bool, Self::Error>;

    /// Native balance of `addr`.
    fn balance(&mut self, addr: &Address) -> Result<u64, Self::Error>;

    /// Moves `amount` from `from` to `to`; `Ok(false)` (and nothing moved) if `from` lacks it.
    fn transfer(&mut self, from: &Address, to: &Address, amount: u64) -> Result<bool, Self::Error>;

    /// Whether `key` alone may sign a contract call for `account` at this point of the block:
    /// its weight in the account's key set reaches the threshold of a call carrying no value;
    /// for an account without a key set, whether `account` is the key's own address.
    fn key_acts_for(&mut self, account: &Address, key: &[u8; 32]) -> Result<bool, Self::Error>;

    /// Code hash of the contract at `addr`, if one is deployed there.
    fn code_of(&mut self, addr: &Address) -> Result<Option<Hash32>, Self::Error>;

    /// The current journal position.
    fn checkpoint(&mut self) -> Checkpoint;

    /// Undoes every write made since `checkpoint`.
    fn revert_to(&mut self, checkpoint: Checkpoint);
}
