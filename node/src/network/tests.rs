//! Two validators and an outsider, in process on loopback: validators connect and gossip; a
//! key that is not in genesis can neither connect nor inject a message.

use std::time::Duration;

use bytes::Bytes;
use libp2p::multiaddr::Protocol;
use quorate_proto::certificate::ValidatorSet;
use quorate_proto::v1::Transaction;
use quorate_proto::Keypair;

use super::{peer_id_of, start, NetworkParts, NetworkSettings};

fn settings(peers: Vec<libp2p::Multiaddr>) -> NetworkSettings {
    NetworkSettings {
        listen_addr: "/ip4/127.0.0.1/tcp/0".parse().expect("addr"),
        peers,
        observers: Vec::new(),
        max_message_bytes: 1 << 20,
        block_max_txs: 10_000,
        redial_interval: Duration::from_millis(100),
    }
}

fn marked(tag: &'static str) -> Transaction {
    Transaction {
        body: Bytes::from_static(tag.as_bytes()),
        ..Default::default()
    }
}

/// Publishes `tag` from `from` until `to` receives a gossip message, or `limit` passes.
async fn gossip_arrives(
    from: &NetworkParts,
    to: &mut NetworkParts,
    tag: &'static str,
    limit: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        from.handle.publish_txs(vec![marked(tag)]);
        if let Ok(Some(txs)) = tokio::time::timeout(Duration::from_millis(200), to.txs.recv()).await
        {
            if txs.iter().any(|t| t.body.as_ref() == tag.as_bytes()) {
                return true;
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_cannot_connect_or_inject_messages() {
    let (a, b, outsider) = (
        Keypair::from_secret(&[1; 32]),
        Keypair::from_secret(&[2; 32]),
        Keypair::from_secret(&[3; 32]),
    );
    let genesis = ValidatorSet::new(vec![a.public(), b.public()]);
    let mut na = start(settings(vec![]), &a, &genesis, "c")
        .await
        .expect("a starts");
    let a_addr = na
        .listen_addr
        .clone()
        .with(Protocol::P2p(peer_id_of(&a.public()).expect("peer id")));
    let nb = start(settings(vec![a_addr.clone()]), &b, &genesis, "c")
        .await
        .expect("b starts");
    assert!(
        gossip_arrives(&nb, &mut na, "from-b", Duration::from_secs(30)).await,
        "validators connect and gossip"
    );
    // The outsider would accept the validators, but they do not accept it.
    let its_view = ValidatorSet::new(vec![a.public(), b.public(), outsider.public()]);
    let no = start(settings(vec![a_addr]), &outsider, &its_view, "c")
        .await
        .expect("outsider starts");
    assert!(
        !gossip_arrives(&no, &mut na, "from-outsider", Duration::from_secs(3)).await,
        "a message from outside genesis arrived"
    );
    let outsider_id = no.handle.local_peer_id();
    assert!(!na.handle.connected_peers().contains(&outsider_id));
    assert!(no.handle.connected_peers().is_empty());
    assert!(na
        .handle
        .connected_peers()
        .contains(&nb.handle.local_peer_id()));
}

/// Issue 13, defect 4: an allow-listed observer could publish on the consensus topic, and
/// gossipsub forwarded every message before the node had looked at it. Now gossip is validated
/// first: an observer's transactions are taken, its consensus messages refused (and not
/// forwarded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_may_send_transactions_but_not_consensus_messages() {
    use quorate_proto::v1::{consensus_message, ConsensusMessage, ConsensusVote};
    let (a, b, observer) = (
        Keypair::from_secret(&[11; 32]),
        Keypair::from_secret(&[12; 32]),
        Keypair::from_secret(&[13; 32]),
    );
    let genesis = ValidatorSet::new(vec![a.public(), b.public()]);
    let observer_id = peer_id_of(&observer.public()).expect("peer id");
    let mut sa = settings(vec![]);
    sa.observers = vec![observer_id];
    let mut na = start(sa, &a, &genesis, "c").await.expect("a starts");
    let a_addr = na
        .listen_addr
        .clone()
        .with(Protocol::P2p(peer_id_of(&a.public()).expect("peer id")));
    let its_view = ValidatorSet::new(vec![a.public(), b.public(), observer.public()]);
    let no = start(settings(vec![a_addr]), &observer, &its_view, "c")
        .await
        .expect("observer starts");
    assert!(
        gossip_arrives(&no, &mut na, "from-observer", Duration::from_secs(30)).await,
        "an observer's transactions are taken"
    );
    let vote = ConsensusMessage {
        message: Some(consensus_message::Message::Vote(ConsensusVote {
            height: 1,
            validator: 0,
            signature: Bytes::from_static(&[7; 64]),
            ..Default::default()
        })),
        compact_block: None,
    };
    for _ in 0..20 {
        no.handle.publish_consensus(&vote);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        na.consensus.try_pop().is_none(),
        "a consensus message from an observer reached the driver"
    );
}

/// Issue 14: the hashes of a compact proposal's missing transactions travel in one sync
/// request (requests were capped at 64 bytes, enough only for a height and a block hash, so
/// every such fetch failed on a real network) and the answer comes back to the driver's inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_transactions_are_asked_for_and_answered_over_sync() {
    use super::ConsensusEvent;
    use quorate_proto::v1::DecisionResponse;
    use quorate_proto::Hash32;
    let (a, b) = (
        Keypair::from_secret(&[21; 32]),
        Keypair::from_secret(&[22; 32]),
    );
    let genesis = ValidatorSet::new(vec![a.public(), b.public()]);
    let mut na = start(settings(vec![]), &a, &genesis, "c")
        .await
        .expect("a starts");
    let a_addr = na
        .listen_addr
        .clone()
        .with(Protocol::P2p(peer_id_of(&a.public()).expect("peer id")));
    let mut nb = start(settings(vec![a_addr]), &b, &genesis, "c")
        .await
        .expect("b starts");
    assert!(
        gossip_arrives(&nb, &mut na, "hello", Duration::from_secs(30)).await,
        "validators connect"
    );
    let txs: Vec<Transaction> = (0..10_000u32)
        .map(|i| Transaction {
            body: Bytes::from(i.to_le_bytes().to_vec()),
            ..Default::default()
        })
        .collect();
    let hashes: Vec<Hash32> = txs
        .iter()
        .map(|t| quorate_proto::tx::tx_hash(&t.body))
        .collect();
    na.handle.request_txs(1, 7, [9; 32], &hashes);
    let request = tokio::time::timeout(Duration::from_secs(30), nb.sync_requests.recv())
        .await
        .expect("the request arrives in time")
        .expect("b's network alive");
    assert_eq!(request.request.tx_hashes.len(), 10_000);
    nb.handle.respond(
        request.peer,
        request.channel,
        DecisionResponse {
            transactions: txs.clone(),
            ..Default::default()
        },
    );
    let event = tokio::time::timeout(Duration::from_secs(30), na.consensus.pop())
        .await
        .expect("the answer arrives in time");
    match event {
        ConsensusEvent::Txs {
            from,
            hash,
            transactions,
        } => {
            assert_eq!((from, hash), (1, [9; 32]));
            assert_eq!(transactions, txs);
        }
        other => panic!("expected the transactions, got {other:?}"),
    }
}
