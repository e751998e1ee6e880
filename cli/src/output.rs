//! JSON and text renderings of API responses for the CLI.

use quorate_proto::v1::{
    BlockInfo, ExecStatus, NodeStatus, Receipt, RejectCode, Rejection, TxState, TxStatusResponse,
};
use serde_json::{json, Value};

/// Name of a rejection code, e.g. `BAD_SIGNATURE`.
pub fn reject_code_name(code: i32) -> &'static str {
    RejectCode::try_from(code).map_or("UNKNOWN", |c| {
        c.as_str_name().trim_start_matches("REJECT_CODE_")
    })
}

/// JSON of a rejection.
pub fn rejection(r: &Rejection) -> Value {
    json!({"code": reject_code_name(r.code), "message": r.message})
}

pub fn exec_status_name(code: i32) -> &'static str {
    ExecStatus::try_from(code).map_or("UNKNOWN", |c| {
        c.as_str_name().trim_start_matches("EXEC_STATUS_")
    })
}

/// JSON of a receipt (event data and return data in hex).
pub fn receipt(r: &Receipt) -> Value {
    let mut v = json!({
        "status": exec_status_name(r.status),
        "fuel_used": r.fuel_used,
        "fee": r.fee,
        "error": r.error,
        "events": r.events.iter().map(|e| json!({
            "source": e.source,
            "contract": hex::encode(&e.contract),
            "kind": e.kind,
            "data": hex::encode(&e.data),
        })).collect::<Vec<_>>(),
    });
    if !r.return_data.is_empty() {
        v["return_data"] = json!(hex::encode(&r.return_data));
    }
    if !r.contract_address.is_empty() {
        v["contract_address"] = json!(hex::encode(&r.contract_address));
    }
    v
}

/// Name of an execution status, e.g. `TRAPPED`.
pub fn exec_status(code: i32) -> &'static str {
    exec_status_name(code)
}

/// Name of a transaction state.
pub fn tx_state_name(code: i32) -> &'static str {
    TxState::try_from(code).map_or("UNKNOWN", |c| {
        c.as_str_name().trim_start_matches("TX_STATE_")
    })
}

/// JSON of a transaction status.
pub fn tx_status(s: &TxStatusResponse) -> Value {
    let mut v = json!({
        "tx_hash": hex::encode(&s.tx_hash),
        "state": tx_state_name(s.state),
    });
    if s.state == TxState::Committed as i32 {
        v["height"] = json!(s.height);
        v["index"] = json!(s.index);
    }
    if let Some(r) = &s.receipt {
        v["receipt"] = receipt(r);
    }
    if let Some(r) = &s.rejection {
        v["rejection"] = rejection(r);
    }
    v
}

/// Text of a transaction status.
pub fn tx_status_text(s: &TxStatusResponse) -> String {
    let mut out = format!("tx {}: {}", hex::encode(&s.tx_hash), tx_state_name(s.state));
    if s.state == TxState::Committed as i32 {
        out += &format!(" at height {} index {}", s.height, s.index);
    }
    if let Some(r) = &s.receipt {
        out += &format!(
            "\n  result {} fuel {} fee {}",
            exec_status_name(r.status),
            r.fuel_used,
            r.fee
        );
        if !r.error.is_empty() {
            out += &format!(" ({})", r.error);
        }
        if !r.contract_address.is_empty() {
            out += &format!("\n  contract {}", hex::encode(&r.contract_address));
        }
        if !r.return_data.is_empty() {
            out += &format!("\n  returned 0x{}", hex::encode(&r.return_data));
        }
        for e in &r.events {
            out += &format!(
                "\n  event {} from {}: 0x{}",
                e.kind,
                hex::encode(&e.contract),
                hex::encode(&e.data)
            );
        }
    }
    if let Some(r) = &s.rejection {
        out += &format!("\n  refused {}: {}", reject_code_name(r.code), r.message);
    }
    out
}

/// JSON of a block.
pub fn block(b: &BlockInfo) -> Value {
    let h = b.header.clone().unwrap_or_default();
    json!({
        "hash": hex::encode(&b.hash),
        "height": h.height,
        "chain_id": h.chain_id,
        "parent_hash": hex::encode(&h.parent_hash),
        "proposer": hex::encode(&h.proposer),
        "time_ms": h.time_ms,
        "tx_root": hex::encode(&h.tx_root),
        "state_root": hex::encode(&h.state_root),
        "receipts_root": hex::encode(&h.receipts_root),
        "tx_count": h.tx_count,
        "protocol_version": h.protocol_version.max(1),
        "tx_hashes": b.tx_hashes.iter().map(hex::encode).collect::<Vec<_>>(),
        "certificate": b.certificate.as_ref().map(|c| json!({
            "height": c.height,
            "round": c.round,
            "block_hash": hex::encode(&c.block_hash),
            "signatures": c.signatures.iter().map(|s| json!({"validator_index": s.validator_index, "signature": hex::encode(&s.signature)})).collect::<Vec<_>>(),
        })),
    })
}

/// Text of a block.
pub fn block_text(b: &BlockInfo) -> String {
    let h = b.header.clone().unwrap_or_default();
    let mut out = format!(
        "block {} {}\n  parent     {}\n  time_ms    {}\n  proposer   {}\n  txs        {}\n  tx_root    {}\n  state_root {}\n  receipts   {}",
        h.height,
        hex::encode(&b.hash),
        hex::encode(&h.parent_hash),
        h.time_ms,
        hex::encode(&h.proposer),
        h.tx_count,
        hex::encode(&h.tx_root),
        hex::encode(&h.state_root),
        hex::encode(&h.receipts_root)
    );
    if let Some(c) = &b.certificate {
        let signers: Vec<String> = c
            .signatures
            .iter()
            .map(|s| s.validator_index.to_string())
            .collect();
        out += &format!(
            "\n  certified  round {} by validators [{}]",
            c.round,
            signers.join(", ")
        );
    }
    for t in &b.tx_hashes {
        out += &format!("\n  tx {}", hex::encode(t));
    }
    out
}

/// JSON of node status.
pub fn status(s: &NodeStatus) -> Value {
    json!({
        "chain_id": s.chain_id,
        "height": s.height,
        "latest_block_hash": hex::encode(&s.latest_block_hash),
        "latest_block_time_ms": s.latest_block_time_ms,
        "state_root": hex::encode(&s.state_root),
        "genesis_hash": hex::encode(&s.genesis_hash),
        "node_public_key": hex::encode(&s.node_public_key),
        "version": s.version,
        "peers": s.peers,
        "mempool_txs": s.mempool_txs,
        "mempool_bytes": s.mempool_bytes,
        "lowest_block_height": s.lowest_block_height,
        "snapshot_heights": s.snapshot_heights,
        "scheduled_validator_sets": s.scheduled_validator_sets.iter().map(|x| json!({
            "from_height": x.from_height,
            "validators": x.validators.iter().map(|v| json!({"name": v.name, "public_key": hex::encode(&v.public_key)})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "engine_fingerprint": hex::encode(&s.engine_fingerprint),
        "params": s.params.as_ref().map(params_json),
        "scheduled_params": s.scheduled_params.iter().map(|x| json!({
            "from_height": x.from_height,
            "params": x.values.iter().map(|v| (v.name.clone(), json!(v.value))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
        "protocol": json!({
            "version": s.protocol_version,
            "supported": s.protocol_supported,
            "scheduled": (s.scheduled_protocol_version > 0).then(|| json!({
                "version": s.scheduled_protocol_version,
                "from_height": s.scheduled_protocol_height,
            })),
            "halted": (!s.halted.is_empty()).then(|| s.halted.clone()),
        }),
        "admin": hex::encode(&s.admin),
        "system_contracts": s.system_contracts.iter().map(|c| json!({"name": c.name, "address": hex::encode(&c.address), "code_hash": hex::encode(&c.code_hash)})).collect::<Vec<_>>(),
    })
}

/// Text of node status.
pub fn status_text(s: &NodeStatus) -> String {
    let mut out = format!(
        "chain      {}\nversion    {}\nheight     {}{}\nhead       {}\nstate_root {}\nengine     {}\nadmin      {}\nmempool    {} txs, {} bytes\nsnapshots  {}\npeers      {}\nvalidators {}",
        s.chain_id,
        s.version,
        s.height,
        if s.lowest_block_height > 1 {
            format!(" (blocks kept from height {})", s.lowest_block_height)
        } else {
            String::new()
        },
        hex::encode(&s.latest_block_hash),
        hex::encode(&s.state_root),
        hex::encode(&s.engine_fingerprint),
        if s.admin.is_empty() { "none".to_owned() } else { hex::encode(&s.admin) },
        s.mempool_txs,
        s.mempool_bytes,
        if s.snapshot_heights.is_empty() {
            "none".to_owned()
        } else {
            let h: Vec<String> = s.snapshot_heights.iter().map(u64::to_string).collect();
            format!("at heights {}", h.join(", "))
        },
        s.peers.len(),
        s.validators.len()
    );
    let mut known = Vec::new();
    for v in &s.validators {
        let peer = quorate_proto::PublicKey::from_slice(&v.public_key)
            .ok()
            .and_then(|k| quorate_node::network::peer_id_of(&k).ok())
            .map(|p| p.to_string());
        let state = if v.public_key == s.node_public_key {
            " (this node)"
        } else if peer.as_ref().is_some_and(|p| s.peers.contains(p)) {
            " (connected)"
        } else if s.validators.len() > 1 {
            " (not connected)"
        } else {
            ""
        };
        out += &format!("\n  {} {}{}", v.name, hex::encode(&v.public_key), state);
        known.extend(peer);
    }
    for x in &s.scheduled_validator_sets {
        out += &format!(
            "\n  decided: {} validators from height {}",
            x.validators.len(),
            x.from_height
        );
        for v in &x.validators {
            let peer = quorate_proto::PublicKey::from_slice(&v.public_key)
                .ok()
                .and_then(|k| quorate_node::network::peer_id_of(&k).ok())
                .map(|p| p.to_string());
            known.extend(peer);
        }
    }
    for p in s.peers.iter().filter(|p| !known.contains(p)) {
        out += &format!("\n  observer {p} (connected)");
    }
    if let Some(p) = &s.params {
        out += &format!(
            "\nparams     block_max_txs {}, block_max_bytes {}, max_tx_bytes {}, fuel_price {}, transfer_fuel {}, max_fuel_per_tx {}, validator_set_delay {}",
            p.block_max_txs,
            p.block_max_bytes,
            p.max_tx_bytes,
            p.fuel_price,
            p.transfer_fuel,
            p.max_fuel_per_tx,
            p.validator_set_delay
        );
        let now = params_json(p);
        for x in &s.scheduled_params {
            let changed: Vec<String> = x
                .values
                .iter()
                .filter(|v| now.get(&v.name).and_then(Value::as_u64) != Some(v.value))
                .map(|v| format!("{} {}", v.name, v.value))
                .collect();
            out += &format!(
                "\n  decided: from height {}: {}",
                x.from_height,
                if changed.is_empty() {
                    "no change".to_owned()
                } else {
                    changed.join(", ")
                }
            );
        }
    }
    out += &format!(
        "\nprotocol   version {} (this release supports 1 to {})",
        s.protocol_version, s.protocol_supported
    );
    if s.scheduled_protocol_version > 0 {
        out += &format!(
            "\n  decided: version {} from height {}",
            s.scheduled_protocol_version, s.scheduled_protocol_height
        );
    }
    if !s.halted.is_empty() {
        out += &format!("\nHALTED     {}", s.halted);
    }
    if !s.system_contracts.is_empty() {
        out += "\nsystem contracts";
        for c in &s.system_contracts {
            out += &format!("\n  {:<18} {}", c.name, hex::encode(&c.address));
        }
    }
    out
}

/// What a transaction body asks, for a co-signer to read before signing: who, on which chain,
/// which nonce and fuel limit, and the payload in words (issue 25: `tx sign` showed a hash).
pub fn tx_body_json(body: &quorate_proto::v1::TxBody) -> Value {
    use quorate_proto::v1::{governance, key_change, tx_body::Payload};
    let hexs = |b: &[u8]| hex::encode(b);
    let payload = match &body.payload {
        None => json!({"kind": "none"}),
        Some(Payload::Transfer(t)) => json!({
            "kind": "transfer", "to": hexs(&t.to), "amount": t.amount,
            "memo": String::from_utf8_lossy(&t.memo),
        }),
        Some(Payload::Deploy(d)) => json!({
            "kind": "deploy",
            "code_hash": quorate_proto::Hash32::of(&d.code).to_hex(),
            "code_bytes": d.code.len(),
            "machine_code_bytes": d.machine_code.len(),
            "init_args": hexs(&d.init_args),
        }),
        Some(Payload::Call(c)) => json!({
            "kind": "call", "contract": hexs(&c.contract), "method": c.method,
            "args": hexs(&c.args), "value": c.value,
        }),
        Some(Payload::Admin(a)) => {
            let mut v = admin_json(a.action.as_ref());
            v["kind"] = json!("admin");
            v
        }
        Some(Payload::Governance(g)) => match &g.action {
            Some(governance::Action::Propose(p)) => json!({
                "kind": "governance", "step": "propose",
                "proposal": admin_json(p.action.as_ref().and_then(|a| a.action.as_ref())),
                "lifetime": p.lifetime, "memo": p.memo,
            }),
            Some(governance::Action::Approve(n)) => {
                json!({"kind": "governance", "step": "approve", "proposal": n})
            }
            None => json!({"kind": "governance", "step": "none"}),
        },
        Some(Payload::Keys(k)) => match &k.change {
            Some(key_change::Change::AddKey(w)) => json!({
                "kind": "key_change", "change": "add_key",
                "public_key": hexs(&w.public_key), "weight": w.weight,
            }),
            Some(key_change::Change::RemoveKey(key)) => {
                json!({"kind": "key_change", "change": "remove_key", "public_key": hexs(key)})
            }
            Some(key_change::Change::SetWeight(w)) => json!({
                "kind": "key_change", "change": "set_weight",
                "public_key": hexs(&w.public_key), "weight": w.weight,
            }),
            Some(key_change::Change::SetThresholds(t)) => json!({
                "kind": "key_change", "change": "set_thresholds", "base": t.base,
                "key_management": t.key_management, "deploy": t.deploy,
                "large_transfer": t.large_transfer, "large_transfer_above": t.large_transfer_above,
                "contract_call": t.contract_call,
            }),
            None => json!({"kind": "key_change", "change": "none"}),
        },
    };
    json!({
        "chain_id": body.chain_id,
        "signer": hexs(&body.signer),
        "nonce": body.nonce,
        "fuel_limit": body.fuel_limit,
        "payload": payload,
    })
}

/// An administrative action as JSON (`action` names it).
pub fn admin_json(action: Option<&quorate_proto::v1::admin::Action>) -> Value {
    use quorate_proto::v1::admin;
    let hexs = |b: &[u8]| hex::encode(b);
    match action {
        Some(admin::Action::SetTrustedDeployer(t)) => json!({
            "action": "set_trusted_deployer", "account": hexs(&t.account), "trusted": t.trusted,
        }),
        Some(admin::Action::SetAdmin(to)) => json!({"action": "set_admin", "admin": hexs(to)}),
        Some(admin::Action::AddValidator(v)) => json!({
            "action": "add_validator", "public_key": hexs(&v.public_key), "name": v.name,
        }),
        Some(admin::Action::RemoveValidator(k)) => {
            json!({"action": "remove_validator", "public_key": hexs(k)})
        }
        Some(admin::Action::ReplaceValidator(r)) => json!({
            "action": "replace_validator", "old_key": hexs(&r.old_key),
            "new_key": r.new.as_ref().map(|n| hexs(&n.public_key)),
        }),
        Some(admin::Action::SetPolicy(p)) => json!({
            "action": "set_policy", "policy": policy_json(p),
        }),
        Some(admin::Action::UpgradeContract(u)) => json!({
            "action": "upgrade_contract", "name": u.name,
            "code_hash": quorate_proto::Hash32::of(&u.code).to_hex(), "code_bytes": u.code.len(),
        }),
        Some(admin::Action::ActivateProtocol(a)) => json!({
            "action": "activate_protocol", "version": a.version, "height": a.height,
        }),
        Some(admin::Action::SetParams(c)) => json!({
            "action": "set_params",
            "values": c.values.iter().map(|v| (v.name.clone(), json!(v.value))).collect::<serde_json::Map<_, _>>(),
        }),
        None => json!({"action": "none"}),
    }
}

/// A governance policy as JSON.
pub fn policy_json(p: &quorate_proto::v1::GovernancePolicy) -> Value {
    json!({
        "members": p.members.iter().map(|m| json!({"name": m.name, "address": hex::encode(&m.address)})).collect::<Vec<_>>(),
        "thresholds": {
            "validators": p.validators, "deployers": p.deployers, "params": p.params,
            "upgrades": p.upgrades, "policy": p.policy,
        },
        "proposal_lifetime": p.proposal_lifetime,
    })
}

/// The governed parameters of a node status, by their genesis names.
pub fn params_json(p: &quorate_proto::v1::ChainParams) -> Value {
    json!({
        "max_tx_bytes": p.max_tx_bytes,
        "block_max_txs": p.block_max_txs,
        "block_max_bytes": p.block_max_bytes,
        "transfer_fuel": p.transfer_fuel,
        "max_fuel_per_tx": p.max_fuel_per_tx,
        "fuel_price": p.fuel_price,
        "validator_set_delay": p.validator_set_delay,
        "contracts.max_code_bytes": p.max_code_bytes,
        "contracts.max_deploy_tx_bytes": p.max_deploy_tx_bytes,
        "contracts.deploy_fuel": p.deploy_fuel,
        "contracts.deploy_fuel_per_byte": p.deploy_fuel_per_byte,
        "contracts.call_fuel": p.call_fuel,
        "contracts.call_fuel_per_byte": p.call_fuel_per_byte,
    })
}
