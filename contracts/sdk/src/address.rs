//! Account and contract addresses.

use alloc::string::String;
use core::fmt;

/// A 20-byte account or contract address.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// From a 20-byte slice (for example a protobuf `bytes` field).
    pub fn from_slice(bytes: &[u8]) -> crate::Result<Self> {
        bytes.try_into().map(Self).map_err(|_| {
            crate::Error::bad_input(crate::__format!(
                "an address is 20 bytes, got {}",
                bytes.len()
            ))
        })
    }

    /// The bytes, for a protobuf `bytes` field.
    pub fn to_vec(&self) -> alloc::vec::Vec<u8> {
        self.0.to_vec()
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(40);
        for b in self.0 {
            s.push(DIGITS[(b >> 4) as usize] as char);
            s.push(DIGITS[(b & 15) as usize] as char);
        }
        s
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.to_hex())
    }
}
