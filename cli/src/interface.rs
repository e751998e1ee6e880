//! A contract's interface (the protobuf descriptors it embeds): JSON arguments to protobuf
//! bytes and protobuf results and events back to JSON. `bytes` fields take and show hex
//! ("0x…") instead of protobuf JSON's base64, since they mostly hold addresses and hashes.

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, MethodDescriptor,
    SerializeOptions,
};
use serde_json::Value;

/// Name of the optional message whose fields name the contract's event kinds and type their
/// data (`message Events { CounterValue incremented = 1; }`).
const EVENTS_MESSAGE: &str = "Events";

/// A decoded interface.
pub struct Interface {
    pool: DescriptorPool,
}

impl Interface {
    /// Decodes an encoded `FileDescriptorSet`.
    pub fn decode(bytes: &[u8]) -> anyhow::Result<Self> {
        Ok(Self {
            pool: DescriptorPool::decode(bytes).context("contract interface does not decode")?,
        })
    }

    /// The rpc named `method` in the interface's services.
    pub fn method(&self, method: &str) -> anyhow::Result<MethodDescriptor> {
        self.pool
            .services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .find(|m| m.name() == method)
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .pool
                    .services()
                    .flat_map(|s| s.methods().map(|m| m.name().to_owned()).collect::<Vec<_>>())
                    .collect();
                anyhow!(
                    "the contract's interface has no method {method:?} (it has: {})",
                    known.join(", ")
                )
            })
    }

    /// Encodes JSON arguments for `method`.
    pub fn encode_args(&self, method: &str, json: &str) -> anyhow::Result<Vec<u8>> {
        let input = self.method(method)?.input();
        encode(&input, json).with_context(|| {
            format!(
                "arguments of {method} must be JSON for message {}",
                input.full_name()
            )
        })
    }

    /// Decodes what `method` returned.
    pub fn decode_result(&self, method: &str, bytes: &[u8]) -> anyhow::Result<Value> {
        decode(&self.method(method)?.output(), bytes)
    }

    /// Decodes an event's data by its kind, when the interface declares it.
    /// (An upgraded contract's interface may hold one `Events` message per version.)
    pub fn decode_event(&self, kind: &str, bytes: &[u8]) -> Option<Value> {
        let desc = self
            .pool
            .all_messages()
            .filter(|m| m.name() == EVENTS_MESSAGE)
            .find_map(|events| match events.get_field_by_name(kind)?.kind() {
                Kind::Message(desc) => Some(desc),
                _ => None,
            })?;
        decode(&desc, bytes).ok()
    }
}

/// JSON (with hex bytes) to protobuf bytes of `desc`.
pub fn encode(desc: &MessageDescriptor, json: &str) -> anyhow::Result<Vec<u8>> {
    let mut value: Value = serde_json::from_str(if json.trim().is_empty() { "{}" } else { json })
        .context("not valid JSON")?;
    convert_bytes(&mut value, desc, Direction::HexToBase64)?;
    let msg = DynamicMessage::deserialize_with_options(
        desc.clone(),
        value,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )?;
    Ok(prost::Message::encode_to_vec(&msg))
}

/// Protobuf bytes of `desc` to JSON (with hex bytes).
pub fn decode(desc: &MessageDescriptor, bytes: &[u8]) -> anyhow::Result<Value> {
    let msg = DynamicMessage::decode(desc.clone(), bytes)
        .with_context(|| format!("not a {} message", desc.full_name()))?;
    let mut value = msg.serialize_with_options(
        serde_json::value::Serializer,
        &SerializeOptions::new()
            .skip_default_fields(false)
            .use_proto_field_name(true),
    )?;
    convert_bytes(&mut value, desc, Direction::Base64ToHex)?;
    Ok(value)
}

#[derive(Clone, Copy)]
enum Direction {
    HexToBase64,
    Base64ToHex,
}

/// Rewrites the `bytes` fields of a protobuf-JSON value between hex and base64.
fn convert_bytes(
    value: &mut Value,
    desc: &MessageDescriptor,
    dir: Direction,
) -> anyhow::Result<()> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    for field in desc.fields() {
        let key = if map.contains_key(field.name()) {
            field.name().to_owned()
        } else if map.contains_key(field.json_name()) {
            field.json_name().to_owned()
        } else {
            continue;
        };
        let v = map.get_mut(&key).expect("key checked");
        let items: Vec<&mut Value> = match v {
            Value::Array(a) if field.is_list() => a.iter_mut().collect(),
            other => vec![other],
        };
        for item in items {
            match field.kind() {
                Kind::Bytes => {
                    convert_one(item, dir).with_context(|| format!("field {}", field.name()))?
                }
                Kind::Message(m) if !field.is_map() => convert_bytes(item, &m, dir)?,
                _ => {}
            }
        }
    }
    Ok(())
}

fn convert_one(v: &mut Value, dir: Direction) -> anyhow::Result<()> {
    let Value::String(s) = v else {
        return Ok(());
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    *s = match dir {
        Direction::HexToBase64 => {
            let hex_text = s.strip_prefix("0x").unwrap_or(s);
            let bytes = match hex::decode(hex_text) {
                Ok(b) => b,
                Err(_) if !s.starts_with("0x") => return Ok(()), // already base64
                Err(e) => bail!("{s:?} is not hex: {e}"),
            };
            b64.encode(bytes)
        }
        Direction::Base64ToHex => {
            let bytes = b64.decode(s.as_bytes()).context("not base64")?;
            format!("0x{}", hex::encode(bytes))
        }
    };
    Ok(())
}
