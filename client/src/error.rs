//! Typed errors of the client: a refusal carries the node's code and message, a wait that ran
//! out names the hash whose outcome is unknown, and a connection that failed names its cause
//! and the fix.

use std::time::Duration;

use quorate_proto::crypto::Hash32;
use quorate_proto::v1::RejectCode;

/// What went wrong talking to a node (new kinds may come: match with a catch-all).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node's address is not a URL this library can use.
    #[error("invalid node URL {url:?}: {why}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// TLS could not be set up from the files given.
    #[error("TLS: {0}")]
    Tls(String),
    /// The node could not be reached, or the connection broke.
    #[error("cannot talk to the node at {url}: {cause}; {fix}")]
    Unreachable {
        /// The node's URL.
        url: String,
        /// What failed, as the transport said it.
        cause: String,
        /// What to do about it.
        fix: &'static str,
    },
    /// The node answered a call with an error status.
    #[error("{what}: {message} ({code:?})")]
    Rpc {
        /// The call.
        what: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The node's message.
        message: String,
    },
    /// The node refused the transaction: nothing changed.
    #[error("transaction {} refused: {}: {message}", hash.map_or("(undecodable)".to_owned(), |h| h.to_hex()), code.as_str_name())]
    Refused {
        /// The transaction's hash, when it decoded far enough to have one.
        hash: Option<Hash32>,
        /// The node's refusal code.
        code: RejectCode,
        /// The node's message, with the offending values.
        message: String,
    },
    /// No outcome known: the wait ran out, or the connection broke after the transaction may
    /// have reached the node. It may still commit. Ask about `hash` (or submit the same
    /// transaction again: it has the same hash and is included at most once).
    #[error("transaction {hash}: outcome unknown after {waited:?} ({why}); query this hash")]
    Unknown {
        /// The transaction's hash.
        hash: Hash32,
        /// How long was waited.
        waited: Duration,
        /// Why there is no outcome (the wait ran out; the connection broke, with its cause).
        why: String,
    },
    /// A read-only contract call failed (the contract trapped, aborted, ran out of fuel or
    /// refused its arguments).
    #[error("query {method}: {} {message}", status.as_str_name())]
    QueryFailed {
        /// The method called.
        method: String,
        /// How it failed.
        status: quorate_proto::v1::ExecStatus,
        /// The contract's message.
        message: String,
    },
    /// What a node said does not hold against the genesis file (a block, its certificate, a
    /// set change, an inclusion).
    #[error("not proven: {0}")]
    Verify(#[from] crate::verify::VerifyError),
    /// Bytes that should hold a transaction do not, or a signature is refused.
    #[error("transaction: {0}")]
    BadTransaction(String),
    /// The node's answer does not make sense (a field missing or malformed).
    #[error("unexpected answer to {what}: {why}")]
    BadAnswer {
        /// The call.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

impl ClientError {
    /// The node's refusal code, if the node refused a transaction.
    pub fn reject_code(&self) -> Option<RejectCode> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// An error status of the call `what` to the node at `url`: a transport failure is
    /// diagnosed (its cause and the fix), anything else is the node's answer.
    ///
    /// `tls_without_identity`: the connection is TLS and presents no client certificate, so a
    /// connection the node closes after the handshake is most likely a node that requires one
    /// (TLS 1.3 sends that refusal after the client's side of the handshake has finished: the
    /// client sees only a broken connection).
    pub(crate) fn from_status(
        url: &str,
        what: &'static str,
        status: tonic::Status,
        tls_without_identity: bool,
    ) -> Self {
        if let Some((cause, fix)) = transport_failure(&status) {
            let fix = match (broken_connection(&cause), tls_without_identity) {
                (true, true) => NO_CLIENT_CERTIFICATE,
                (true, false) if url.starts_with("http://") => MAYBE_TLS,
                _ => fix,
            };
            return Self::Unreachable {
                url: url.to_owned(),
                cause,
                fix,
            };
        }
        Self::Rpc {
            what,
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// Every message of `err`'s chain of sources, outermost first.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Whether `status` is a transport failure rather than the node's answer, and if so its cause
/// and the fix.
fn transport_failure(status: &tonic::Status) -> Option<(String, &'static str)> {
    use std::error::Error as _;
    let source = status.source()?;
    let cause = chain(source);
    Some((cause.clone(), fix_for(&cause)))
}

/// Whether `cause` says the node closed the connection under a call.
fn broken_connection(cause: &str) -> bool {
    let c = cause.to_ascii_lowercase();
    [
        "broken pipe",
        "connection reset",
        "connection closed",
        "stream closed",
        "unexpected eof",
        "canceled",
    ]
    .iter()
    .any(|b| c.contains(b))
}

/// The fix when a plaintext call meets a connection the node closes (a TLS node does that to
/// bytes that are not TLS).
const MAYBE_TLS: &str = "the node closed the connection: if it speaks TLS, use an https:// URL and give the CA that signed its certificate; if it was restarting, try again";

/// The fix when a node requires a client certificate and none was given.
const NO_CLIENT_CERTIFICATE: &str = "the node closed the TLS connection: it may require a client certificate (mutual TLS), so give the client certificate and key its client CA signed; if it was restarting, try again";

/// What to do about a transport failure whose messages are `cause`.
pub(crate) fn fix_for(cause: &str) -> &'static str {
    let c = cause.to_ascii_lowercase();
    if c.contains("certificaterequired") || c.contains("certificate required") {
        NO_CLIENT_CERTIFICATE
    } else if c.contains("unknownissuer")
        || c.contains("invalid peer certificate")
        || c.contains("badsignature")
    {
        "the node's certificate is not signed by the CA given: give the CA that signed it (--ca)"
    } else if c.contains("notvalidforname") || c.contains("not valid for name") {
        "the node's certificate does not name this host: connect by a name its certificate holds"
    } else if c.contains("badcertificate")
        || c.contains("bad certificate")
        || c.contains("unknownca")
        || c.contains("unknown ca")
    {
        "the node refused the client certificate: give one its client CA signed"
    } else if c.contains("invalidcontenttype")
        || c.contains("corrupt message")
        || c.contains("invalid content type")
        || c.contains("wrong version number")
    {
        "the node does not speak TLS here: use an http:// URL"
    } else if c.contains("h2 protocol error")
        || c.contains("http2 error")
        || c.contains("frame with invalid size")
        || c.contains("connection reset")
    {
        MAYBE_TLS
    } else if c.contains("connection refused") {
        "nothing listens at that address: is the node running, and is this its gRPC address?"
    } else if c.contains("dns error") || c.contains("failed to lookup") {
        "the host name does not resolve"
    } else if c.contains("timed out") || c.contains("timeout") {
        "the node did not answer in time: is the address reachable from here?"
    } else {
        "check the node's address and that it is running"
    }
}

#[cfg(test)]
mod tests {
    use super::fix_for;

    #[test]
    fn each_transport_failure_names_its_fix() {
        for (cause, fix) in [
            (
                "transport error: received fatal alert: CertificateRequired",
                "client certificate",
            ),
            (
                "invalid peer certificate: UnknownIssuer",
                "not signed by the CA",
            ),
            (
                "received corrupt message of type InvalidContentType",
                "http://",
            ),
            ("h2 protocol error: http2 error", "https://"),
            (
                "tcp connect error: Connection refused (os error 111)",
                "nothing listens",
            ),
            (
                "dns error: failed to lookup address information",
                "does not resolve",
            ),
        ] {
            assert!(fix_for(cause).contains(fix), "{cause}: {}", fix_for(cause));
        }
    }
}
