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

/// A transaction of the size of a signed one (the network refuses smaller ones unread).
fn marked(tag: &'static str) -> Transaction {
    sized(Bytes::from_static(tag.as_bytes()))
}

fn sized(body: Bytes) -> Transaction {
    Transaction {
        body,
        public_key: Bytes::from_static(&[1; 32]),
        signature: Bytes::from_static(&[2; 64]),
        cosignatures: Vec::new(),
    }
}

/// Two validators (keys from `seed` and `seed + 1`), the second dialling the first, connected
/// and gossiping.
async fn connected_pair(seed: u8) -> (NetworkParts, NetworkParts) {
    let (a, b) = (
        Keypair::from_secret(&[seed; 32]),
        Keypair::from_secret(&[seed + 1; 32]),
    );
    let genesis = ValidatorSet::new(vec![a.public(), b.public()]);
    let mut na = start(settings(vec![]), &a, &genesis, "c")
        .await
        .expect("a starts");
    let nb = dial_and_gossip(&mut na, &a, &b, &genesis, "hello", Duration::from_secs(30)).await;
    (na, nb)
}

/// Starts validator `b` with `a` (running as `na`) as its peer and asserts that a gossip
/// message tagged `tag` reaches `na` within `limit`.
async fn dial_and_gossip(
    na: &mut NetworkParts,
    a: &Keypair,
    b: &Keypair,
    genesis: &ValidatorSet,
    tag: &'static str,
    limit: Duration,
) -> NetworkParts {
    let a_addr = na
        .listen_addr
        .clone()
        .with(Protocol::P2p(peer_id_of(&a.public()).expect("peer id")));
    let nb = start(settings(vec![a_addr]), b, genesis, "c")
        .await
        .expect("b starts");
    assert!(
        gossip_arrives(&nb, na, tag, limit).await,
        "gossip tagged {tag:?} from b did not reach a"
    );
    nb
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
            if txs
                .transactions
                .iter()
                .any(|t| t.body.as_ref() == tag.as_bytes())
            {
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
    let (na, mut nb) = connected_pair(21).await;
    let txs: Vec<Transaction> = (0..5_000u32)
        .map(|i| sized(Bytes::from(i.to_le_bytes().to_vec())))
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
    assert_eq!(request.request.tx_hashes.len(), 5_000);
    nb.handle.respond(
        request,
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

/// Issue 24 (decode amplification): a gossip message of `0a 00` pairs decoded to one empty
/// transaction per two bytes (a 1 MiB message to half a million transactions, ~60 MB) in the
/// network task, before any check, and was queued and forwarded. Now such a message is refused
/// on its bytes: the junk never reaches admission or the driver, and the good message sent
/// after it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_that_would_decode_to_empty_entries_is_refused_unread() {
    use super::Command;
    use quorate_proto::v1::{CompactBlock, ConsensusMessage};
    let (mut na, nb) = connected_pair(31).await;
    // The liar's junk: ~1 MB of empty transactions, and a compact block of empty leaves.
    let junk_txs = [0x0a, 0x00].repeat(500_000);
    let junk_compact = prost::Message::encode_to_vec(&ConsensusMessage {
        message: None,
        compact_block: Some(CompactBlock {
            header: Bytes::new(),
            tx_hashes: vec![Bytes::new(); 400_000],
        }),
    });
    for (topic, data) in [
        (nb.handle.tx_topic.clone(), junk_txs),
        (nb.handle.consensus_topic.clone(), junk_compact),
    ] {
        nb.handle
            .commands
            .send(Command::Publish { topic, data })
            .await
            .expect("b's network alive");
    }
    // Then a good transaction: everything a receives until it is the junk, if it got through.
    nb.handle.publish_txs(vec![marked("after-junk")]);
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        let mut batches = Vec::new();
        loop {
            let batch = na.txs.recv().await.expect("a's network alive");
            let done = batch
                .transactions
                .iter()
                .any(|t| t.body.as_ref() == b"after-junk");
            batches.push(batch.transactions.len());
            if done {
                return batches;
            }
        }
    })
    .await
    .expect("the good transaction arrives after the junk");
    assert!(
        got.iter().all(|&n| n < 10),
        "the junk reached admission: batches of {got:?} transactions"
    );
    assert!(
        na.consensus.try_pop().is_none(),
        "the junk compact block reached the driver"
    );
}

/// Issue 24 (per-peer sync limit leak): a request refused over the per-peer limit was never
/// counted, but its failure (the dropped answer) freed a place all the same, so one peer could
/// queue requests without bound and starve every other's fetches. Now only counted requests
/// free a place: one peer never has more than its limit waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sync_requests_free_no_place_in_the_per_peer_limit() {
    use super::{ConsensusEvent, SYNC_REQUESTS_PER_PEER};
    let (mut na, nb) = connected_pair(41).await;
    // b asks a for transactions, one request at a time; a answers none of them (its sync
    // server is busy), so each is either queued at a or refused (b sees it fail).
    let (mut queued, mut refused) = (Vec::new(), 0);
    for i in 0..3 * SYNC_REQUESTS_PER_PEER as u8 {
        nb.handle
            .request_txs(0, 1, [i; 32], &[quorate_proto::Hash32([i; 32])]);
        let outcome = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::select! {
                r = na.sync_requests.recv() => Ok(r.expect("a's network alive")),
                e = nb.consensus.pop() => Err(e),
            }
        })
        .await
        .expect("the request is queued or refused in time");
        match outcome {
            Ok(request) => queued.push(request),
            Err(ConsensusEvent::Txs { transactions, .. }) if transactions.is_empty() => {
                refused += 1
            }
            Err(other) => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(
        queued.len(),
        SYNC_REQUESTS_PER_PEER,
        "one peer queued more than its limit ({refused} refused)"
    );
    assert_eq!(refused, 2 * SYNC_REQUESTS_PER_PEER);
    assert!(crate::metrics::get().refusals("sync_request_over_peer_limit") >= refused as u64);
    // Answering one frees one place, once a's network has sent the answer: b asks again
    // until a queues the request (a request that arrives before the answer has gone is
    // refused; so is every one if answers free nothing, and then the attempts run out).
    na.handle.respond(queued.remove(0), Default::default());
    let mut attempts = 0;
    let again = loop {
        attempts += 1;
        assert!(attempts <= 20, "no place freed after {attempts} requests");
        nb.handle
            .request_txs(0, 1, [99; 32], &[quorate_proto::Hash32([99; 32])]);
        let outcome = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::select! {
                r = na.sync_requests.recv() => Ok(r.expect("a's network alive")),
                e = nb.consensus.pop() => Err(e),
            }
        })
        .await
        .expect("the request is queued or refused in time");
        match outcome {
            Ok(request) => break request,
            // A refusal, or the (empty) answer to the request answered above.
            Err(ConsensusEvent::Txs { transactions, .. }) if transactions.is_empty() => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(other) => panic!("unexpected event {other:?}"),
        }
    };
    assert_eq!(again.request.block_hash.as_ref(), &[99; 32]);
}

/// Issue 24 (forwarded junk was charged to the honest forwarder): gossip is not signed by
/// libp2p, so a consensus message a liar sent to validator b alone was forwarded by b and
/// queued at a under b, where it could evict b's own votes and answers. Now each validator
/// checks a consensus message's signature before queueing or forwarding it: b refuses the
/// forgery (a never sees it) and a queues what b forwards under the validator that signed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_consensus_messages_stop_at_the_first_honest_validator() {
    use super::{ConsensusEvent, SignatureCheck};
    use crate::driver::codec::{message_from_proto, vote_to_proto};
    use crate::driver::signing::signing_message;
    use quorate_consensus::{BlockId, Message, Signable, SignedVote, Vote, VoteKind};
    use quorate_proto::v1::{consensus_message, ConsensusMessage};
    let keys: Vec<Keypair> = (51..54u8).map(|i| Keypair::from_secret(&[i; 32])).collect();
    let genesis = ValidatorSet::new(keys.iter().map(Keypair::public).collect());
    let check = {
        let genesis = genesis.clone();
        let check: SignatureCheck = std::sync::Arc::new(move |m: &ConsensusMessage| {
            match message_from_proto(m).map_err(|e| e.to_string())? {
                Message::Vote(v) => {
                    let key = genesis
                        .keys()
                        .get(v.vote.validator as usize)
                        .ok_or("no such")?;
                    let msg = signing_message("c", Signable::Vote(&v.vote));
                    key.verify(&msg, &v.signature.0)
                        .then_some(v.vote.validator)
                        .ok_or_else(|| "bad signature".into())
                }
                _ => Err("not a vote".into()),
            }
        });
        check
    };
    // A line: a — b — liar (validators 0, 1 and 2); a and the liar are not connected.
    let addr = |p: &NetworkParts, k: &Keypair| {
        p.listen_addr
            .clone()
            .with(Protocol::P2p(peer_id_of(&k.public()).expect("peer id")))
    };
    let mut nb = start(settings(vec![]), &keys[1], &genesis, "c")
        .await
        .expect("b starts");
    let b_addr = addr(&nb, &keys[1]);
    let na = start(settings(vec![b_addr.clone()]), &keys[0], &genesis, "c")
        .await
        .expect("a starts");
    let liar = start(settings(vec![b_addr]), &keys[2], &genesis, "c")
        .await
        .expect("the liar starts");
    // Only b checks: what a receives shows what b forwarded.
    nb.handle.check_signatures_with(check);
    assert!(
        gossip_arrives(&na, &mut nb, "a-b", Duration::from_secs(30)).await,
        "a and b connect"
    );
    assert!(
        gossip_arrives(&liar, &mut nb, "liar-b", Duration::from_secs(30)).await,
        "the liar and b connect"
    );
    let vote = |validator: u32, key: Option<&Keypair>| {
        let vote = Vote {
            height: 1,
            round: 0,
            kind: VoteKind::Prevote,
            block: Some(BlockId([5; 32])),
            validator,
        };
        let signature = match key {
            Some(k) => k
                .sign(&signing_message("c", Signable::Vote(&vote)))
                .to_vec(),
            None => vec![7; 64],
        };
        ConsensusMessage {
            message: Some(consensus_message::Message::Vote(vote_to_proto(
                &SignedVote {
                    vote,
                    signature: quorate_consensus::Signature(signature),
                },
            ))),
            compact_block: None,
        }
    };
    // The liar sends a forgery in validator 0's name, then its own signed vote; b forwards
    // only the second.
    let before = crate::metrics::get().refusals("consensus_bad_signature");
    liar.handle.publish_consensus(&vote(0, None));
    liar.handle.publish_consensus(&vote(2, Some(&keys[2])));
    let event = tokio::time::timeout(Duration::from_secs(30), na.consensus.pop())
        .await
        .expect("the signed vote arrives through b");
    let ConsensusEvent::Message(m) = event else {
        panic!("expected a consensus message, got {event:?}");
    };
    match message_from_proto(&m).expect("decodes") {
        Message::Vote(v) => assert_eq!(v.vote.validator, 2, "the forgery reached a"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(na.consensus.try_pop().is_none(), "nothing else reached a");
    assert!(
        crate::metrics::get().refusals("consensus_bad_signature") > before,
        "b counted the forgery it refused"
    );
}

/// Issue 24: one serial sync server answered every peer's requests in arrival order, so a peer
/// catching up (or pretending to) with decision and snapshot requests delayed the fetches a
/// validator waits on to vote at the current height. Fetches now have their own queue and are
/// answered first.
#[tokio::test]
async fn body_and_transaction_fetches_are_answered_before_bulk_requests() {
    use super::{urgent, SyncRequests};
    use quorate_proto::v1::{DecisionRequest, SnapshotRequest};
    let decision = DecisionRequest {
        height: 5,
        ..Default::default()
    };
    let chunk = DecisionRequest {
        snapshot: Some(SnapshotRequest {
            height: 0,
            chunk: Some(1),
        }),
        ..Default::default()
    };
    let body = DecisionRequest {
        height: 5,
        block_hash: Bytes::from_static(&[1; 32]),
        ..Default::default()
    };
    assert!(!urgent(&decision) && !urgent(&chunk) && urgent(&body));
    // The server's queues, with numbers for requests (a request carries a channel only a swarm
    // makes): three bulk requests wait, then a fetch comes; the fetch is taken first.
    let (urgent_tx, urgent_rx) = tokio::sync::mpsc::channel::<u32>(4);
    let (bulk_tx, bulk_rx) = tokio::sync::mpsc::channel::<u32>(4);
    for i in 0..3 {
        bulk_tx.send(i).await.expect("bulk");
    }
    urgent_tx.send(100).await.expect("urgent");
    let mut queues = SyncRequests {
        urgent: urgent_rx,
        bulk: bulk_rx,
    };
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(queues.recv().await.expect("a request"));
    }
    assert_eq!(order, vec![100, 0, 1, 2]);
}

/// Review of issue 24: a validator's answers to this node's sync requests shared a queue with
/// the gossip queued under its name, so replayed gossip in its name could push them out. They
/// have queues of their own now.
#[tokio::test]
async fn answers_keep_their_place_whatever_gossip_is_queued_under_their_sender() {
    use super::{Asked, ConsensusEvent, GossipIntake, Inbox, Verdict, INBOX_SENDERS};
    use prost::Message as _;
    use quorate_proto::v1::{consensus_message, ConsensusMessage, ConsensusVote};
    let (txs_tx, _txs) = tokio::sync::mpsc::channel(4);
    let intake = GossipIntake {
        consensus: std::sync::Arc::new(Inbox::new(INBOX_SENDERS, 4, 1 << 20)),
        txs_tx,
        tx_bytes: std::sync::Arc::new(tokio::sync::Semaphore::new(1024)),
        check: None,
        warnings: Default::default(),
    };
    intake.answer(
        Asked::Body {
            from: 1,
            hash: [3; 32],
        },
        None,
    );
    let peer = peer_id_of(&Keypair::from_secret(&[1; 32]).public()).expect("peer id");
    for round in 0..10 {
        let vote = ConsensusMessage {
            message: Some(consensus_message::Message::Vote(ConsensusVote {
                height: 1,
                round,
                ..Default::default()
            })),
            compact_block: None,
        };
        // No signature check set yet: kept for the driver, not forwarded.
        assert_eq!(
            intake.consensus(Some(1), &peer, &vote.encode_to_vec()),
            Verdict::Ignore
        );
    }
    let (mut answers, mut votes) = (0, 0);
    while let Some(e) = intake.consensus.try_pop() {
        match e {
            ConsensusEvent::Body { from: 1, hash, .. } if hash == [3; 32] => answers += 1,
            ConsensusEvent::Message(_) => votes += 1,
            _ => {}
        }
    }
    assert_eq!(
        answers, 1,
        "the answer was pushed out by gossip under its sender's name"
    );
    assert!(
        votes > 0,
        "votes taken before a signature check are kept for the driver"
    );
}

/// Issue 25 (low): the network had no connection limits: anyone could open connections and
/// stall their handshakes without bound. Past `MAX_PENDING_INCOMING` handshakes in progress,
/// new connections are closed at once; once the stalled ones go, validators connect as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_are_bounded() {
    use tokio::io::AsyncReadExt;
    let a = Keypair::from_secret(&[71; 32]);
    let b = Keypair::from_secret(&[72; 32]);
    let genesis = ValidatorSet::new(vec![a.public(), b.public()]);
    let mut na = start(settings(vec![]), &a, &genesis, "c")
        .await
        .expect("a starts");
    let port = na
        .listen_addr
        .iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("tcp port");
    let opened = super::MAX_PENDING_INCOMING as usize + 40;
    let mut stalled = Vec::with_capacity(opened);
    for _ in 0..opened {
        stalled.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("tcp connect"),
        );
    }
    // Over the limit, a connection is closed at once; within it, it waits for a handshake that
    // never comes until libp2p's upgrade timeout (10 s), well after this 3-s look.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let looks = stalled.iter_mut().map(|s| async move {
        let mut buf = [0u8; 64];
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                // The node's side of the handshake: not a close.
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    });
    let closed = futures::future::join_all(looks)
        .await
        .into_iter()
        .filter(|c| *c)
        .count();
    assert!(
        closed >= opened - super::MAX_PENDING_INCOMING as usize,
        "{closed} of {opened} stalled connections closed at once"
    );
    drop(stalled);
    // A validator connects once the stalled handshakes are gone.
    dial_and_gossip(
        &mut na,
        &a,
        &b,
        &genesis,
        "after the stall",
        Duration::from_secs(60),
    )
    .await;
}

/// A configured peer's identity is the validator key state sync counts its offer under.
#[test]
fn a_peer_id_gives_back_its_validator_key() {
    let key = quorate_proto::Keypair::from_secret(&[3; 32]).public();
    let peer = super::peer_id_of(&key).expect("peer id");
    assert_eq!(super::key_of_peer(&peer), Some(key));
    assert_eq!(super::key_of_peer(&libp2p::PeerId::random()), None);
    let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}")
        .parse()
        .expect("multiaddr");
    assert_eq!(
        super::configured_peer_keys(&[addr.clone(), addr]),
        vec![key],
        "one key per peer"
    );
}

/// Issue 24, finding 33: a liar re-published an honest validator's genuine vote as often as it
/// liked (each publication is a new gossip message, and a copy with an unknown field appended
/// is other bytes). Every copy passed the signature check, was queued under that validator's
/// name, and pushed its other messages out of its queue; every honest node forwarded it. A
/// copy of a message already waiting in the queue is now ignored before its signature is
/// checked, whatever its bytes: not queued, not forwarded.
#[tokio::test]
async fn copies_of_a_queued_message_are_not_queued_again_or_forwarded() {
    use super::{ConsensusEvent, GossipIntake, Inbox, SignatureCheck, Verdict, INBOX_SENDERS};
    use crate::driver::codec::{message_from_proto, vote_to_proto};
    use crate::driver::signing::signing_message;
    use prost::Message as _;
    use quorate_consensus::{BlockId, Message, Signable, SignedVote, Vote, VoteKind};
    use quorate_proto::v1::{consensus_message, ConsensusMessage};
    let keys: Vec<Keypair> = (61..65u8).map(|i| Keypair::from_secret(&[i; 32])).collect();
    let set = ValidatorSet::new(keys.iter().map(Keypair::public).collect());
    let verified = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let check: SignatureCheck = {
        let verified = verified.clone();
        std::sync::Arc::new(move |m: &ConsensusMessage| {
            verified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match message_from_proto(m).map_err(|e| e.to_string())? {
                Message::Vote(v) => {
                    let key = set.keys().get(v.vote.validator as usize).ok_or("no such")?;
                    key.verify(
                        &signing_message("c", Signable::Vote(&v.vote)),
                        &v.signature.0,
                    )
                    .then_some(v.vote.validator)
                    .ok_or_else(|| "bad signature".into())
                }
                _ => Err("not a vote".into()),
            }
        })
    };
    let (txs_tx, _txs) = tokio::sync::mpsc::channel(4);
    let intake = GossipIntake {
        consensus: std::sync::Arc::new(Inbox::new(INBOX_SENDERS, 4, 1 << 20)),
        txs_tx,
        tx_bytes: std::sync::Arc::new(tokio::sync::Semaphore::new(1024)),
        check: Some(check),
        warnings: Default::default(),
    };
    let vote = |kind| {
        let vote = Vote {
            height: 1,
            round: 0,
            kind,
            block: Some(BlockId([5; 32])),
            validator: 1,
        };
        let signature = keys[1].sign(&signing_message("c", Signable::Vote(&vote)));
        ConsensusMessage {
            message: Some(consensus_message::Message::Vote(vote_to_proto(
                &SignedVote {
                    vote,
                    signature: quorate_consensus::Signature(signature.to_vec()),
                },
            ))),
            compact_block: None,
        }
        .encode_to_vec()
    };
    let (prevote, precommit) = (vote(VoteKind::Prevote), vote(VoteKind::Precommit));
    let liar = peer_id_of(&keys[3].public()).expect("peer id");
    let honest = peer_id_of(&keys[1].public()).expect("peer id");
    assert_eq!(
        intake.consensus(Some(1), &honest, &prevote),
        Verdict::Accept
    );
    assert_eq!(
        intake.consensus(Some(1), &honest, &precommit),
        Verdict::Accept
    );
    // The liar re-publishes the prevote, and sends it once more with an unknown field (field
    // 99, a varint) appended: the same message in other bytes.
    let mut reencoded = prevote.clone();
    reencoded.extend_from_slice(&[0x98, 0x06, 0x01]);
    assert_eq!(
        ConsensusMessage::decode(&reencoded[..]).expect("decodes"),
        ConsensusMessage::decode(&prevote[..]).expect("decodes")
    );
    let mut verdicts = Vec::new();
    for _ in 0..10 {
        verdicts.push(intake.consensus(Some(3), &liar, &prevote));
    }
    verdicts.push(intake.consensus(Some(3), &liar, &reencoded));
    // And with a block attached (not signed: other bytes, the same vote): refused outright.
    let mut with_block = ConsensusMessage::decode(&prevote[..]).expect("decodes");
    with_block.compact_block = Some(Default::default());
    assert_eq!(
        intake.consensus(Some(3), &liar, &with_block.encode_to_vec()),
        Verdict::Refuse,
        "a vote with a block attached"
    );
    assert!(
        verdicts.iter().all(|v| *v == Verdict::Ignore),
        "copies were accepted (and so forwarded): {verdicts:?}"
    );
    assert_eq!(
        verified.load(std::sync::atomic::Ordering::Relaxed),
        2,
        "copies had their signature checked"
    );
    let mut queued = Vec::new();
    while let Some(e) = intake.consensus.try_pop() {
        if let ConsensusEvent::Message(m) = e {
            queued.push(m.encode_to_vec());
        }
    }
    assert_eq!(
        queued,
        vec![prevote.clone(), precommit],
        "validator 1's queue holds copies, or lost its precommit to them"
    );
    // Once the driver has taken it, a copy is queued again (an honest validator re-sends its
    // votes every second, for peers that missed them).
    assert_eq!(intake.consensus(Some(3), &liar, &prevote), Verdict::Accept);
}

/// Issue 24, finding 33 (after its review): copies are one message by what is signed, so a
/// proposal's unsigned part must not make new ones. Its block's header must hash to the block
/// it names (else refused); copies that differ only in their leaves are one message (the first
/// kept; the driver checks leaves against the header's root); a re-sent proposal without its
/// block is another message.
#[tokio::test]
async fn a_proposals_unsigned_part_makes_no_new_message() {
    use super::{ConsensusEvent, GossipIntake, Inbox, SignatureCheck, Verdict, INBOX_SENDERS};
    use crate::driver::codec::proposal_to_proto;
    use crate::driver::signing::signing_message;
    use prost::Message as _;
    use quorate_consensus::{BlockId, Proposal, Signable, SignedProposal};
    use quorate_proto::v1::{consensus_message, CompactBlock, ConsensusMessage};
    let key = Keypair::from_secret(&[71; 32]);
    // Signatures are not what this test is about: every message passes as validator 1's.
    let check: SignatureCheck = std::sync::Arc::new(|_: &ConsensusMessage| Ok(1));
    let (txs_tx, _txs) = tokio::sync::mpsc::channel(4);
    let intake = GossipIntake {
        consensus: std::sync::Arc::new(Inbox::new(INBOX_SENDERS, 64, 1 << 20)),
        txs_tx,
        tx_bytes: std::sync::Arc::new(tokio::sync::Semaphore::new(1024)),
        check: Some(check),
        warnings: Default::default(),
    };
    let header = Bytes::from_static(b"a block header");
    let proposal = Proposal {
        height: 1,
        round: 0,
        block: BlockId(quorate_proto::Hash32::of(&header).0),
        pol_round: None,
        proposer: 1,
    };
    let signature = key.sign(&signing_message("c", Signable::Proposal(&proposal)));
    let signed = Some(consensus_message::Message::Proposal(proposal_to_proto(
        &SignedProposal {
            proposal,
            signature: quorate_consensus::Signature(signature.to_vec()),
        },
    )));
    let with = |header: &Bytes, leaves: usize| {
        ConsensusMessage {
            message: signed.clone(),
            compact_block: Some(CompactBlock {
                header: header.clone(),
                tx_hashes: vec![Bytes::from(vec![9u8; 32]); leaves],
            }),
        }
        .encode_to_vec()
    };
    let peer = peer_id_of(&Keypair::from_secret(&[72; 32]).public()).expect("peer id");
    assert_eq!(
        intake.consensus(Some(1), &peer, &with(&header, 2)),
        Verdict::Accept
    );
    assert_eq!(
        intake.consensus(Some(3), &peer, &with(&header, 3)),
        Verdict::Ignore,
        "another leaf made another message"
    );
    assert_eq!(
        intake.consensus(Some(3), &peer, &with(&Bytes::from_static(b"other"), 2)),
        Verdict::Refuse,
        "a header that does not hash to the proposed block"
    );
    let bodiless = ConsensusMessage {
        message: signed.clone(),
        compact_block: None,
    };
    assert_eq!(
        intake.consensus(Some(1), &peer, &bodiless.encode_to_vec()),
        Verdict::Accept,
        "a re-sent proposal without its block is another message"
    );
    let mut queued = Vec::new();
    while let Some(ConsensusEvent::Message(m)) = intake.consensus.try_pop() {
        queued.push(m.compact_block.map(|c| c.tx_hashes.len()));
    }
    assert_eq!(
        queued,
        vec![Some(2), None],
        "the first copy kept, then the re-sent one"
    );
}

/// Issue 25 (high, third part): a node restarted far behind knows only the set of its old
/// height, and telling the network that set disallowed every configured peer outside it: when
/// today's validators are all new (reached through `p2p.peers`, OPERATING §6c) it could never
/// catch up. Configured peers stay allowed whatever set this node knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_peers_stay_connected_when_the_known_set_leaves_them_out() {
    let (a, c) = (
        Keypair::from_secret(&[31; 32]),
        Keypair::from_secret(&[32; 32]),
    );
    // Today's set, as C knows it; A knows only the set of its old height.
    let today = ValidatorSet::new(vec![a.public(), c.public()]);
    let old = ValidatorSet::new(vec![a.public()]);
    let mut nc = start(settings(vec![]), &c, &today, "c")
        .await
        .expect("c starts");
    let c_id = peer_id_of(&c.public()).expect("peer id");
    let c_addr = nc.listen_addr.clone().with(Protocol::P2p(c_id));
    let mut na = start(settings(vec![c_addr]), &a, &old, "c")
        .await
        .expect("a starts");
    assert!(
        gossip_arrives(&na, &mut nc, "before", Duration::from_secs(30)).await,
        "a reaches its configured peer"
    );
    na.handle.set_validators(&[a.public()], &[a.public()], &[]);
    // A disallowed peer's connections close at once; give it time, then check both ways.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        na.handle.connected_peers().contains(&c_id),
        "the configured peer was disconnected"
    );
    assert!(
        gossip_arrives(&nc, &mut na, "after", Duration::from_secs(10)).await,
        "the configured peer's messages still arrive"
    );
}
