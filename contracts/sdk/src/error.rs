//! How a contract fails: a kind the node records in the receipt, and a message.

use alloc::string::String;
use core::fmt;

/// The receipt status a failure maps to (the ABI's abort kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorKind {
    /// The contract refused: receipt status ABORTED.
    Failed = 0,
    /// The arguments are invalid: receipt status BAD_INPUT.
    BadInput = 1,
    /// The caller may not do this: receipt status PERMISSION_DENIED.
    PermissionDenied = 2,
}

/// A contract failure. Returning one from a method ends the call; nothing it wrote is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Why, for the receipt.
    pub message: String,
}

impl Error {
    /// The contract refuses, with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Failed,
            message: message.into(),
        }
    }

    /// The arguments are invalid.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadInput,
            message: message.into(),
        }
    }

    /// The caller may not do this.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::PermissionDenied,
            message: message.into(),
        }
    }

    /// Ends the call with this failure.
    pub fn abort(&self) -> ! {
        crate::env::abort(self.kind, &self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A method's result.
pub type Result<T> = core::result::Result<T, Error>;

/// Returns `Err(Error::new(format!(...)))` from the enclosing method.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::new($crate::__format!($($arg)*)))
    };
}

/// Returns the given error from the enclosing method unless `cond` holds.
///
/// `ensure!(amount > 0, Error::bad_input("amount must be positive"))`, or with a message
/// only: `ensure!(open, "sale is closed")`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $err:expr $(,)?) => {
        if !$cond {
            return ::core::result::Result::Err($crate::Error::from($err));
        }
    };
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}
