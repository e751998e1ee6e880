//! SIGKILL during a stream of transfers loses no transaction a client was told was committed:
//! a real `quorate dev` process is killed mid-stream several times and restarted on the same
//! home; every acknowledged transaction is still committed and the state is consistent.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::DevNode;
use quorate_genesis::{dev_account_key, DEV_ACCOUNTS};
use quorate_proto::tx::{sign, transfer_body};
use quorate_proto::v1::chain_service_client::ChainServiceClient;
use quorate_proto::v1::tx_service_client::TxServiceClient;
use quorate_proto::v1::{
    GetAccountRequest, SubmitRequest, TxState, TxStatusRequest, WaitForCommitRequest,
};

const INITIAL_BALANCE: u64 = 1_000_000_000_000;
const FEE: u64 = 1_000; // dev genesis: transfer_fuel 1000 × fuel_price 1

/// One sender: transfers 1 unit at a time and records each hash the node confirms committed.
async fn sender(url: String, from: u32, acked: Arc<Mutex<Vec<Bytes>>>, stop: Arc<AtomicBool>) {
    let Ok(channel) = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
    else {
        return;
    };
    let mut txs = TxServiceClient::new(channel.clone());
    let mut chain = ChainServiceClient::new(channel);
    let key = dev_account_key(from);
    let to = dev_account_key((from + 1) % DEV_ACCOUNTS as u32).address();
    while !stop.load(Ordering::Relaxed) {
        let Ok(acct) = chain
            .get_account(GetAccountRequest {
                address: Bytes::copy_from_slice(&key.address().0),
            })
            .await
        else {
            return;
        };
        let nonce = acct.into_inner().next_nonce;
        let tx = sign(
            &transfer_body("quorate-dev", &key, nonce, 1_000, to, 1, vec![]),
            &key,
        );
        let Ok(res) = txs
            .submit(SubmitRequest {
                transaction: Some(tx),
            })
            .await
        else {
            return;
        };
        let res = res.into_inner();
        // Right after a restart the node may still be committing the block it had decided
        // before the kill (it recovers it from its record): the account read above is the
        // committed state, admission already counts the decided block, and the nonce is
        // refused as used. A client reads the account again and goes on; any other refusal
        // is a defect.
        if let Some(r) = &res.rejection {
            assert!(
                r.code == quorate_proto::v1::RejectCode::NonceUsed as i32,
                "unexpected refusal: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let Ok(status) = txs
            .wait_for_commit(WaitForCommitRequest {
                tx_hash: res.tx_hash.clone(),
                timeout_ms: 20_000,
            })
            .await
        else {
            return;
        };
        if status.into_inner().state == TxState::Committed as i32 {
            acked.lock().expect("lock").push(res.tx_hash);
        }
    }
}

#[test]
fn sigkill_during_transfers_loses_no_acknowledged_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let acked: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let rounds = 4;
    for round in 0..rounds {
        let node = DevNode::start(dir.path());
        let stop = Arc::new(AtomicBool::new(false));
        let before = acked.lock().expect("lock").len();
        let tasks: Vec<_> = (0..DEV_ACCOUNTS as u32)
            .map(|i| rt.spawn(sender(node.url.clone(), i, acked.clone(), stop.clone())))
            .collect();
        // Let some commits be acknowledged (bounded wait), then kill at a varying moment.
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.lock().expect("lock").len() < before + 8 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(37 * (round as u64 + 1)));
        node.kill();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = rt.block_on(t);
        }
        assert!(
            acked.lock().expect("lock").len() > before,
            "round {round} acknowledged no commit"
        );
    }

    // Restart and check every acknowledged transaction and the state.
    let node = DevNode::start(dir.path());
    let acked = acked.lock().expect("lock").clone();
    rt.block_on(async {
        let channel = node.channel().await;
        let mut txs = TxServiceClient::new(channel.clone());
        for hash in &acked {
            let s = txs
                .get_status(TxStatusRequest {
                    tx_hash: hash.clone(),
                })
                .await
                .expect("status")
                .into_inner();
            assert_eq!(
                s.state,
                TxState::Committed as i32,
                "acknowledged tx {} lost after SIGKILL",
                hex::encode(hash)
            );
        }
        // Every committed transfer moved 1 unit in a ring and burned one fee: the total supply
        // equals the initial supply minus one fee per committed transaction (= sum of nonces).
        let mut chain = ChainServiceClient::new(channel);
        let (mut total, mut committed) = (0u64, 0u64);
        for i in 0..DEV_ACCOUNTS as u32 {
            let a = chain
                .get_account(GetAccountRequest {
                    address: Bytes::copy_from_slice(&dev_account_key(i).address().0),
                })
                .await
                .expect("account")
                .into_inner()
                .account
                .expect("account");
            total += a.balance;
            committed += a.nonce;
        }
        assert!(committed >= acked.len() as u64);
        assert_eq!(
            total,
            INITIAL_BALANCE * DEV_ACCOUNTS as u64 - FEE * committed
        );
    });
    println!(
        "{} acknowledged commits over {rounds} SIGKILLs: all present after restart",
        acked.len()
    );
}
