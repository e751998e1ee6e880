//! Account state records.

use quorate_proto::Address;

use super::{corrupt, Storage, StorageError, CF_ACCOUNTS};

/// An account's balance and next nonce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Balance in the smallest unit.
    pub balance: u64,
    /// Nonce the account's next transaction must carry.
    pub nonce: u64,
}

impl Account {
    /// Fixed 16-byte encoding: balance then nonce, big-endian.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.balance.to_be_bytes());
        b[8..].copy_from_slice(&self.nonce.to_be_bytes());
        b
    }

    /// Decodes the 16-byte encoding.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != 16 {
            return None;
        }
        Some(Self {
            balance: u64::from_be_bytes(b[..8].try_into().ok()?),
            nonce: u64::from_be_bytes(b[8..].try_into().ok()?),
        })
    }

    /// True for the state of an account that was never touched (not stored).
    pub fn is_empty(&self) -> bool {
        self.balance == 0 && self.nonce == 0
    }
}

impl Storage {
    /// The committed state of `addr` (empty if never touched).
    pub fn account(&self, addr: &Address) -> Result<Account, StorageError> {
        match self.db().get_pinned_cf(self.cf(CF_ACCOUNTS), addr.0)? {
            None => Ok(Account::default()),
            Some(b) => Account::from_bytes(&b)
                .ok_or_else(|| corrupt(format!("account {addr}"), "wrong length")),
        }
    }

    /// The committed states of many accounts, in order, with one multi-get.
    pub fn accounts(&self, addrs: &[Address]) -> Result<Vec<Account>, StorageError> {
        let cf = self.cf(CF_ACCOUNTS);
        self.db()
            .batched_multi_get_cf(cf, addrs.iter().map(|a| &a.0), false)
            .into_iter()
            .zip(addrs)
            .map(|(r, addr)| match r? {
                None => Ok(Account::default()),
                Some(b) => Account::from_bytes(&b)
                    .ok_or_else(|| corrupt(format!("account {addr}"), "wrong length")),
            })
            .collect()
    }
}
