//! Account state records.

use quorate_proto::Address;
use rocksdb::ReadOptions;

use super::db::{corrupt, Storage, StorageError, CF_ACCOUNTS};

/// An account's balance, next nonce, and whether a key set entry controls it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Balance in the smallest unit.
    pub balance: u64,
    /// Nonce the account's next transaction must carry.
    pub nonce: u64,
    /// A key set entry ([`EntryKey::key_set`](super::contracts::EntryKey::key_set)) controls the
    /// account; otherwise the one key its address is derived from does. Kept here so that
    /// admission learns it from the account read it makes anyway.
    pub keyed: bool,
}

/// The encoded account: 16 bytes, or 17 with the key-set flag.
#[derive(Clone, Copy, Debug)]
pub struct AccountBytes {
    buf: [u8; 17],
    len: usize,
}

impl AsRef<[u8]> for AccountBytes {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Account {
    /// Balance then nonce, big-endian, then one byte `1` when keyed (a single-key account's
    /// encoding, and so its part of the state root, is what it was before key sets existed).
    pub fn to_bytes(&self) -> AccountBytes {
        let mut buf = [0u8; 17];
        buf[..8].copy_from_slice(&self.balance.to_be_bytes());
        buf[8..16].copy_from_slice(&self.nonce.to_be_bytes());
        buf[16] = 1;
        AccountBytes {
            buf,
            len: if self.keyed { 17 } else { 16 },
        }
    }

    /// Decodes [`Account::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let keyed = match b.len() {
            16 => false,
            17 if b[16] == 1 => true,
            _ => return None,
        };
        Some(Self {
            balance: u64::from_be_bytes(b[..8].try_into().ok()?),
            nonce: u64::from_be_bytes(b[8..16].try_into().ok()?),
            keyed,
        })
    }

    /// True for the state of an account that was never touched (not stored).
    pub fn is_empty(&self) -> bool {
        self.balance == 0 && self.nonce == 0 && !self.keyed
    }
}

impl Storage {
    /// The committed state of `addr` (empty if never touched).
    pub fn account(&self, addr: &Address) -> Result<Account, StorageError> {
        self.account_at(addr, None)
    }

    /// [`Storage::account`] as of the snapshot `at` reads (`None`: the latest).
    pub fn account_at(
        &self,
        addr: &Address,
        at: Option<&ReadOptions>,
    ) -> Result<Account, StorageError> {
        let cf = self.cf(CF_ACCOUNTS);
        let got = match at {
            Some(o) => self.db().get_pinned_cf_opt(cf, addr.0, o)?,
            None => self.db().get_pinned_cf(cf, addr.0)?,
        };
        match got {
            None => Ok(Account::default()),
            Some(b) => Account::from_bytes(&b)
                .ok_or_else(|| corrupt(format!("account {addr}"), "wrong length")),
        }
    }

    /// The committed states of many accounts, in order, with one multi-get.
    pub fn accounts(&self, addrs: &[Address]) -> Result<Vec<Account>, StorageError> {
        self.accounts_at(addrs, None)
    }

    /// [`Storage::accounts`] as of the snapshot `at` reads (`None`: the latest).
    pub fn accounts_at(
        &self,
        addrs: &[Address],
        at: Option<&ReadOptions>,
    ) -> Result<Vec<Account>, StorageError> {
        let cf = self.cf(CF_ACCOUNTS);
        let keys = addrs.iter().map(|a| &a.0);
        let got = match at {
            Some(o) => self.db().batched_multi_get_cf_opt(cf, keys, false, o),
            None => self.db().batched_multi_get_cf(cf, keys, false),
        };
        got.into_iter()
            .zip(addrs)
            .map(|(r, addr)| match r? {
                None => Ok(Account::default()),
                Some(b) => Account::from_bytes(&b)
                    .ok_or_else(|| corrupt(format!("account {addr}"), "wrong length")),
            })
            .collect()
    }
}
