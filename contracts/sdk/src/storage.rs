//! The contract's own key-value storage: raw bytes, or typed with protobuf values through
//! [`Item`] (one value) and [`Map`] (values by key). Keys are scoped to the contract: no other
//! contract can read or write them.

use alloc::string::String;
use alloc::vec::Vec;
use core::marker::PhantomData;

use prost::Message;

use crate::{env, Address, Error, Result};

/// The value stored under `key`.
pub fn get_raw(key: &[u8]) -> Option<Vec<u8>> {
    env::storage_get(key)
}

/// Stores `value` under `key`.
pub fn set_raw(key: &[u8], value: &[u8]) {
    env::storage_set(key, value)
}

/// Removes `key`; returns whether it had a value.
pub fn remove_raw(key: &[u8]) -> bool {
    env::storage_remove(key)
}

/// The protobuf value stored under `key`.
pub fn get<T: Message + Default>(key: &[u8]) -> Result<Option<T>> {
    get_raw(key)
        .map(|b| {
            T::decode(b.as_slice())
                .map_err(|e| Error::new(crate::__format!("stored value does not decode: {e}")))
        })
        .transpose()
}

/// Stores a protobuf value under `key`.
pub fn set<T: Message>(key: &[u8], value: &T) {
    set_raw(key, &value.encode_to_vec())
}

/// Something usable as (part of) a storage key. Variable-length parts carry their length, so a
/// tuple of keys never collides with another tuple.
pub trait Key {
    /// Appends this key's bytes.
    fn append_to(&self, out: &mut Vec<u8>);
}

impl Key for Address {
    fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Key for u64 {
    fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

impl Key for u32 {
    fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

impl<const N: usize> Key for [u8; N] {
    fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl Key for [u8] {
    fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len() as u16).to_be_bytes());
        out.extend_from_slice(self);
    }
}

impl Key for Vec<u8> {
    fn append_to(&self, out: &mut Vec<u8>) {
        self.as_slice().append_to(out)
    }
}

impl Key for str {
    fn append_to(&self, out: &mut Vec<u8>) {
        self.as_bytes().append_to(out)
    }
}

impl Key for String {
    fn append_to(&self, out: &mut Vec<u8>) {
        self.as_str().append_to(out)
    }
}

impl<K: Key + ?Sized> Key for &K {
    fn append_to(&self, out: &mut Vec<u8>) {
        (**self).append_to(out)
    }
}

impl<A: Key, B: Key> Key for (A, B) {
    fn append_to(&self, out: &mut Vec<u8>) {
        self.0.append_to(out);
        self.1.append_to(out);
    }
}

impl<A: Key, B: Key, C: Key> Key for (A, B, C) {
    fn append_to(&self, out: &mut Vec<u8>) {
        self.0.append_to(out);
        self.1.append_to(out);
        self.2.append_to(out);
    }
}

/// One typed value under a fixed name. Names of items and maps must differ from each other
/// and must not contain '/'.
pub struct Item<T> {
    name: &'static str,
    _value: PhantomData<fn() -> T>,
}

impl<T: Message + Default> Item<T> {
    /// The item stored under `name`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            _value: PhantomData,
        }
    }

    /// The stored value, if any.
    pub fn load(&self) -> Result<Option<T>> {
        get(self.name.as_bytes())
    }

    /// The stored value, or the default when there is none.
    pub fn load_or_default(&self) -> Result<T> {
        Ok(self.load()?.unwrap_or_default())
    }

    /// Stores the value.
    pub fn save(&self, value: &T) {
        set(self.name.as_bytes(), value)
    }

    /// Removes the value; returns whether there was one.
    pub fn remove(&self) -> bool {
        remove_raw(self.name.as_bytes())
    }
}

/// Typed values by key, under a fixed name.
pub struct Map<K: ?Sized, V> {
    name: &'static str,
    _types: PhantomData<fn(&K) -> V>,
}

impl<K: Key + ?Sized, V: Message + Default> Map<K, V> {
    /// The map stored under `name`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            _types: PhantomData,
        }
    }

    fn key(&self, k: &K) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.name.len() + 33);
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'/');
        k.append_to(&mut out);
        out
    }

    /// The value under `k`, if any.
    pub fn get(&self, k: &K) -> Result<Option<V>> {
        get(&self.key(k))
    }

    /// The value under `k`, or the default.
    pub fn get_or_default(&self, k: &K) -> Result<V> {
        Ok(self.get(k)?.unwrap_or_default())
    }

    /// True when `k` has a value.
    pub fn has(&self, k: &K) -> bool {
        get_raw(&self.key(k)).is_some()
    }

    /// Stores `v` under `k`.
    pub fn set(&self, k: &K, v: &V) {
        set(&self.key(k), v)
    }

    /// Removes `k`; returns whether it had a value.
    pub fn remove(&self, k: &K) -> bool {
        remove_raw(&self.key(k))
    }
}
