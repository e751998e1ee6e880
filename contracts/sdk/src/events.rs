//! Events: typed records of what a call did, delivered in the transaction's receipt and on
//! the node's event stream (filterable by contract and kind).

use prost::Message;

use crate::env;

/// Emits an event of `kind` with a protobuf payload.
pub fn emit<M: Message>(kind: &str, data: &M) {
    env::emit_event(kind, &data.encode_to_vec())
}

/// Emits an event of `kind` with raw bytes.
pub fn emit_raw(kind: &str, data: &[u8]) {
    env::emit_event(kind, data)
}
