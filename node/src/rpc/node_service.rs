//! `quorate.v1.NodeService`: identity, head and validator set.

use std::sync::Arc;

use bytes::Bytes;
use quorate_proto::crypto::{Address, PublicKey};
use quorate_proto::v1::node_service_server::NodeService;
use quorate_proto::v1::{
    ChainParams, GetNodeStatusRequest, NodeStatus, P2pTraffic, ScheduledSet, SystemContractInfo,
    ValidatorInfo,
};
use tonic::{Request, Response, Status};

use super::NodeState;

/// The service implementation.
pub struct NodeApi(pub Arc<NodeState>);

#[tonic::async_trait]
impl NodeService for NodeApi {
    async fn get_status(
        &self,
        _request: Request<GetNodeStatusRequest>,
    ) -> Result<Response<NodeStatus>, Status> {
        let info = self.0.chain.info();
        let head = self.0.heads.borrow().clone();
        let sets = self.0.chain.sets();
        let (mempool_txs, mempool_bytes) = {
            let m = self.0.mempool.lock();
            (m.len() as u32, m.bytes() as u64)
        };
        let p = self.0.chain.params_at(head.height + 1);
        let scheduled_params = self
            .0
            .chain
            .params()
            .after(head.height + 1)
            .iter()
            .map(|(from, params)| crate::chain_params::entry_of(*from, params))
            .collect();
        let book = self.0.chain.params();
        let scheduled_protocol = book.protocol_after(head.height + 1).unwrap_or_default();
        let admin = self.0.chain.storage().admin().map_err(super::internal)?;
        let lowest_block_height = self
            .0
            .chain
            .storage()
            .lowest_block()
            .map_err(super::internal)?;
        let snapshot_heights = match self.0.chain.snapshots() {
            Some(s) => s.store().heights().map_err(|e| {
                tracing::error!(error = %e, "cannot list snapshots");
                Status::internal(e.to_string())
            })?,
            None => Vec::new(),
        };
        Ok(Response::new(NodeStatus {
            chain_id: info.chain_id.clone(),
            height: head.height,
            latest_block_hash: Bytes::copy_from_slice(&head.hash.0),
            latest_block_time_ms: head.time_ms,
            state_root: Bytes::copy_from_slice(&head.state_root.0),
            validators: sets
                .at(head.height + 1)
                .entries
                .iter()
                .map(|v| ValidatorInfo {
                    name: v.name.clone(),
                    public_key: v.public_key.clone(),
                    address: PublicKey::from_slice(&v.public_key)
                        .map(|k| Bytes::copy_from_slice(&k.address().0))
                        .unwrap_or_default(),
                })
                .collect(),
            scheduled_validator_sets: sets
                .after(head.height + 1)
                .iter()
                .map(|s| ScheduledSet {
                    from_height: s.from_height,
                    validators: s.entries.clone(),
                })
                .collect(),
            node_public_key: Bytes::copy_from_slice(&self.0.node_key.0),
            peers: self
                .0
                .network
                .as_ref()
                .map(|n| {
                    n.connected_peers()
                        .iter()
                        .map(ToString::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            mempool_txs,
            mempool_bytes,
            genesis_hash: Bytes::copy_from_slice(&info.genesis_hash.0),
            scheduled_params,
            protocol_version: book.protocol_at(head.height + 1),
            protocol_supported: crate::protocol::SUPPORTED,
            scheduled_protocol_version: scheduled_protocol.1,
            scheduled_protocol_height: scheduled_protocol.0,
            // Of the head this answer shows (the published one, which may trail the tip).
            halted: book
                .halt_at(head.height + 1)
                .map_or_else(String::new, |h| h.to_string()),
            params: Some(ChainParams {
                validator_set_delay: p.validator_set_delay,
                max_tx_bytes: p.max_tx_bytes,
                block_max_txs: p.block_max_txs,
                block_max_bytes: p.block_max_bytes,
                transfer_fuel: p.transfer_fuel,
                max_fuel_per_tx: p.max_fuel_per_tx,
                fuel_price: p.fuel_price,
                max_code_bytes: p.contracts.max_code_bytes,
                max_deploy_tx_bytes: p.contracts.max_deploy_tx_bytes,
                deploy_fuel: p.contracts.deploy_fuel,
                deploy_fuel_per_byte: p.contracts.deploy_fuel_per_byte,
                call_fuel: p.contracts.call_fuel,
                call_fuel_per_byte: p.contracts.call_fuel_per_byte,
            }),
            engine_fingerprint: Bytes::copy_from_slice(
                &self.0.chain.contracts().vm().fingerprint().0,
            ),
            admin: admin
                .map(|a| Bytes::copy_from_slice(&a.0))
                .unwrap_or_default(),
            system_contracts: info
                .genesis
                .system_contracts
                .iter()
                .map(|c| SystemContractInfo {
                    name: c.name.clone(),
                    address: Bytes::copy_from_slice(&Address::of_system_contract(&c.name).0),
                    code_hash: hex::decode(&c.code_hash).unwrap_or_default().into(),
                })
                .collect(),
            p2p_traffic: ["consensus", "transactions", "sync"]
                .into_iter()
                .map(|kind| {
                    let (received_bytes, sent_bytes) = crate::metrics::get().p2p_totals(kind);
                    P2pTraffic {
                        kind: kind.to_owned(),
                        received_bytes,
                        sent_bytes,
                    }
                })
                .collect(),
            lowest_block_height,
            snapshot_heights,
        }))
    }
}
