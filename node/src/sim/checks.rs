//! What every simulated run must keep: agreement (one block per height, the same everywhere),
//! validity (every committed block passes the block rules and carries a good certificate;
//! every block an honest validator serves matches its header), liveness after the heal, nothing
//! acknowledged lost (not by a restart, not from any validator's chain), a transaction hash
//! included at most once, and what each validator keeps because of its peers bounded.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use quorate_proto::certificate::verify_certificate;
use quorate_proto::crypto::Hash32;
use quorate_proto::v1::{DecisionRequest, DecisionResponse};

use super::{Report, World, VALIDATORS};
use crate::block_rules::{check_body, decode_header};

/// Most bodies a validator may keep received from or asked of its peers at once.
pub const KEPT_BODIES_BOUND: u32 = 32;
/// Most blocks a validator may keep executed at one height.
pub const EXECUTED_BLOCKS_BOUND: u32 = 32;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Two validators committed different blocks at one height.
    #[error("agreement: height {height}: validator {a} committed {hash_a}, validator {b} committed {hash_b}")]
    Agreement {
        /// Height.
        height: u64,
        /// One validator.
        a: usize,
        /// Its block.
        hash_a: String,
        /// The other.
        b: usize,
        /// Its block.
        hash_b: String,
    },
    /// A committed block breaks the rules or its certificate does not verify.
    #[error("validity: validator {validator} height {height}: {why}")]
    Validity {
        /// Validator.
        validator: usize,
        /// Height.
        height: u64,
        /// What is wrong.
        why: String,
    },
    /// An honest validator served a block whose body does not match its header.
    #[error("served: validator {validator}: {why}")]
    Served {
        /// Validator.
        validator: usize,
        /// What is wrong.
        why: String,
    },
    /// After the heal, honest validators did not all commit two more heights in time.
    #[error(
        "liveness: healed at height {healed_at}, honest heights {heights:?} after {window_s} s"
    )]
    Liveness {
        /// Highest honest height at the heal.
        healed_at: u64,
        /// Honest heights at the deadline.
        heights: Vec<u64>,
        /// The window, seconds.
        window_s: u64,
    },
    /// Something acknowledged as committed is gone.
    #[error("lost: validator {validator}: {what}")]
    Lost {
        /// Validator.
        validator: usize,
        /// What.
        what: String,
    },
    /// A client's transaction committed with signatures the client did not give it.
    #[error("forged: validator {validator}: transaction {tx} committed at height {height} signed by keys its sender did not sign with")]
    Forged {
        /// Validator.
        validator: usize,
        /// Transaction hash.
        tx: String,
        /// Height.
        height: u64,
    },
    /// One transaction hash in two places of one chain.
    #[error("duplicate: validator {validator}: transaction {tx} at heights {first} and {second}")]
    Duplicate {
        /// Validator.
        validator: usize,
        /// Transaction hash.
        tx: String,
        /// First height.
        first: u64,
        /// Second height.
        second: u64,
    },
    /// A validator keeps more than its bound because of its peers.
    #[error("memory: validator {validator}: {what} = {value} over its bound {bound}")]
    Memory {
        /// Validator.
        validator: usize,
        /// What is kept.
        what: &'static str,
        /// How much.
        value: u64,
        /// The bound.
        bound: u64,
    },
    /// An honest validator passed on a consensus message it should have dropped: one whose
    /// signature fails (its peers would queue a forgery under its name) or one for a height it
    /// had committed (a replayed old vote, verified and queued under its signer's name).
    #[error("relayed: validator {validator} passed on a consensus message it should have dropped: {why}")]
    Relayed {
        /// Validator.
        validator: usize,
        /// Why the signature fails.
        why: String,
    },
    /// A validation waited for a body its validator already held (it is judged only when a
    /// fetch retry comes back, if ever).
    #[error("waited: validator {validator}: {count} validations wait for bodies it holds")]
    Waited {
        /// Validator.
        validator: usize,
        /// How many.
        count: u32,
    },
    /// An honest validator charged another honest one with an answer that proves its sender
    /// dishonest.
    #[error(
        "accused: validator {validator} charged honest validator {accused} with a dishonest answer"
    )]
    Accused {
        /// The validator that charged.
        validator: usize,
        /// The honest validator it charged.
        accused: u32,
    },
    /// A validator could not be restarted from its disk.
    #[error("restart: validator {validator}: {why}")]
    Restart {
        /// Validator.
        validator: usize,
        /// Why.
        why: String,
    },
    /// The trusted deployer's precompiled counter did not give the machine code's result.
    #[error("counter: validator {validator}: {why}")]
    Counter {
        /// The validator whose receipt it is.
        validator: usize,
        /// What was wrong.
        why: String,
    },
    /// A validator's consensus driver stopped with an error.
    #[error("driver stopped: validator {validator}: {why}")]
    DriverStopped {
        /// Validator.
        validator: usize,
        /// Why.
        why: String,
    },
}

/// Honest validator `validator`, which had committed height `committed`, accepted the
/// consensus message `data` and passes it on: it must be for a later height (a message of a
/// committed height is of no use, and a liar replaying a validator's old genuine votes would
/// fill the queue kept under that validator's name with them); where someone lies, its
/// signature must hold (checked apart from the node's own gossip checks), and its compact
/// block's leaves must not decode far beyond their size.
pub(crate) fn relayed(
    world: &World,
    validator: usize,
    chain: &crate::chain::Chain,
    committed: u64,
    data: &[u8],
) {
    use prost::Message as _;
    let why = match quorate_proto::v1::ConsensusMessage::decode(data) {
        Err(e) => format!("does not decode: {e}"),
        Ok(m) => {
            if let Some(height) = consensus_height(&m).filter(|h| *h <= committed) {
                world.checks.violate(Violation::Relayed {
                    validator,
                    why: format!(
                        "it is for height {height}, which this validator had committed ({committed})"
                    ),
                });
                return;
            }
            if world.plan.liar.is_none() {
                return;
            }
            let leaves = m.compact_block.as_ref().map_or(0, |c| c.tx_hashes.len());
            decoded(
                world,
                validator,
                "structs decoded from a consensus message (bytes)",
                data.len(),
                (leaves * std::mem::size_of::<bytes::Bytes>()) as u64,
            );
            // One check for the run: the simulated chains keep their genesis set.
            let check = world.checks.relay_check.get_or_init(|| {
                crate::driver::signing::check_against(
                    &chain.info().chain_id,
                    chain.sets().clone(),
                    Arc::new(|| 0),
                )
            });
            match check(&m) {
                Err(crate::network::Unchecked::Invalid(why)) => {
                    format!("its signature check fails: {why}")
                }
                Ok(_) | Err(crate::network::Unchecked::Stale) => return,
            }
        }
    };
    world.checks.violate(Violation::Relayed { validator, why });
}

/// How many bytes of structs a peer's message may decode to per byte of it (plus
/// [`DECODED_SLACK`]): every entry a node can use takes more bytes on the wire than its struct
/// (a transaction at least 100 against 120, a cosignature 100 against 64, a certificate
/// signature 66 against 40), while an empty entry takes two.
const DECODED_PER_BYTE: u64 = 2;
/// Structs any message may decode to (the message's own, a block's, a certificate's).
const DECODED_SLACK: u64 = 4096;

/// The bytes of structs (not counting the byte fields' contents) `transactions` decoded to.
fn structs_of(transactions: &[quorate_proto::v1::Transaction]) -> u64 {
    use std::mem::size_of;
    transactions
        .iter()
        .map(|t| {
            size_of::<quorate_proto::v1::Transaction>()
                + t.cosignatures.len() * size_of::<quorate_proto::v1::Cosignature>()
        })
        .sum::<usize>() as u64
}

/// Honest validator `validator` took a peer's message of `wire` bytes, which decodes to
/// `structs` bytes of structs: a small message must not make it hold much more than its size
/// (a `0a 00` pair decodes to a whole empty transaction).
fn decoded(world: &World, validator: usize, what: &'static str, wire: usize, structs: u64) {
    let bound = DECODED_PER_BYTE * wire as u64 + DECODED_SLACK;
    if structs > bound {
        world.checks.violate(Violation::Memory {
            validator,
            what,
            value: structs,
            bound,
        });
    }
}

/// Honest validator `validator` accepted transaction gossip `data` (decoded here again, apart
/// from the node's own checks).
pub(crate) fn took_gossip(world: &World, validator: usize, data: &[u8]) {
    use prost::Message as _;
    if let Ok(g) = quorate_proto::v1::TxGossip::decode(data) {
        let structs = structs_of(&g.transactions);
        decoded(
            world,
            validator,
            "structs decoded from a gossip message (bytes)",
            data.len(),
            structs,
        );
    }
}

/// Honest validator `validator` took `response`, `wire` bytes, as the answer to its request.
pub(crate) fn took_answer(
    world: &World,
    validator: usize,
    wire: usize,
    response: &DecisionResponse,
) {
    let block = response
        .block
        .as_ref()
        .map_or(0, |b| structs_of(&b.transactions));
    let certificate = response.certificate.as_ref().map_or(0, |c| {
        (c.signatures.len() * std::mem::size_of::<quorate_proto::v1::CommitSignature>()) as u64
    });
    let structs = block + certificate + structs_of(&response.transactions);
    decoded(
        world,
        validator,
        "structs decoded from a sync answer (bytes)",
        wire,
        structs,
    );
}

/// The checks' memory of a run.
#[derive(Default)]
pub(crate) struct Checks {
    violations: Mutex<Vec<Violation>>,
    /// The first block seen committed at each height, and by whom.
    commits: Mutex<BTreeMap<u64, (usize, [u8; 32])>>,
    /// Transactions acknowledged to clients, with their height.
    acknowledged: Mutex<BTreeMap<[u8; 32], u64>>,
    /// The leaf (hash and signing keys) of every transaction clients signed, by hash.
    signed: Mutex<BTreeMap<[u8; 32], [u8; 32]>>,
    /// Every commit, in order.
    trace: Mutex<blake3::Hasher>,
    /// Fetches an honest validator answered with nothing for a height it had decided:
    /// (validator, height, block asked for).
    empty_fetches: Mutex<Vec<(usize, u64, [u8; 32])>>,
    /// The signature check of consensus messages honest validators pass on (`relayed`).
    relay_check: std::sync::OnceLock<crate::network::SignatureCheck>,
}

impl Checks {
    /// Records a violation (the first of each kind and place is enough).
    pub fn violate(&self, v: Violation) {
        let mut all = self.violations.lock();
        if !all.contains(&v) && all.len() < 64 {
            all.push(v);
        }
    }

    /// The violations found.
    pub fn take(&self) -> Vec<Violation> {
        std::mem::take(&mut self.violations.lock())
    }

    /// Validator `v` published head `height` with block `hash` at `at` into the run.
    pub fn committed(&self, v: usize, height: u64, hash: [u8; 32], at: Duration) {
        {
            let mut t = self.trace.lock();
            t.update(&(v as u64).to_le_bytes());
            t.update(&height.to_le_bytes());
            t.update(&hash);
            t.update(&(at.as_millis() as u64).to_le_bytes());
        }
        let mut commits = self.commits.lock();
        match commits.get(&height) {
            Some((a, first)) if *first != hash => {
                let v = Violation::Agreement {
                    height,
                    a: *a,
                    hash_a: hex::encode(first),
                    b: v,
                    hash_b: hex::encode(hash),
                };
                drop(commits);
                self.violate(v);
            }
            Some(_) => {}
            None => {
                commits.insert(height, (v, hash));
            }
        }
    }

    /// A client signed the transaction `hash` as `leaf`.
    pub fn signed(&self, hash: Hash32, leaf: Hash32) {
        self.signed.lock().insert(hash.0, leaf.0);
    }

    /// A client was told `hash` is committed at `height`.
    pub fn acknowledge(&self, hash: Hash32, height: u64) {
        self.acknowledged.lock().insert(hash.0, height);
    }

    fn trace(&self) -> String {
        self.trace.lock().finalize().to_hex()[..16].to_owned()
    }
}

/// Checks a block an honest validator serves: its body matches its header, and a decision's
/// certificate verifies.
pub(crate) fn served(
    world: &World,
    server: usize,
    request: &DecisionRequest,
    response: &DecisionResponse,
) {
    let Some(block) = &response.block else {
        return;
    };
    let params = &world.generated.genesis.params;
    let why = match decode_header(&block.header) {
        Err(e) => Some(format!("a header that does not decode: {e}")),
        Ok(header) => check_body(&header, &block.transactions, params)
            .err()
            .map(|e| format!("block at height {}: {e}", header.height)),
    };
    // A decision's certificate must verify (body and transaction fetches carry none).
    let why = why.or_else(|| {
        let cert = response.certificate.as_ref()?;
        let header = decode_header(&block.header).ok()?;
        let hash = Hash32::of(&block.header);
        let set = world.generated.genesis.validator_set();
        verify_certificate(
            cert,
            &world.generated.genesis.chain_id,
            &set,
            header.height,
            &hash,
        )
        .err()
        .map(|e| format!("decision at height {}: certificate: {e}", header.height))
    });
    if let Some(why) = why {
        world.checks.violate(Violation::Served {
            validator: server,
            why: format!("answering {request:?}: {why}"),
        });
    }
}

/// Checks that honest validator `server`, which has decided up to `decided` (exclusive),
/// answered an honest fetch of a block it decided with that block: it holds the body in its
/// cache or its storage from the decision on, whatever its commit's write is doing.
pub(crate) fn fetch_answered(
    world: &World,
    server: usize,
    decided: u64,
    request: &DecisionRequest,
    response: &DecisionResponse,
) {
    let fetch = !request.block_hash.is_empty() && request.snapshot.is_none();
    let empty = response.block.is_none() && response.transactions.is_empty();
    if !fetch || !empty || request.height >= decided {
        return;
    }
    let Ok(hash) = <[u8; 32]>::try_from(&request.block_hash[..]) else {
        return;
    };
    // Whether it decided that block is known once some validator has written the height:
    // judged now if one has, otherwise at the end.
    let committed = world
        .checks
        .commits
        .lock()
        .get(&request.height)
        .map(|(_, h)| *h);
    match committed {
        Some(h) if h == hash => world
            .checks
            .violate(empty_fetch(server, request.height, &hash)),
        Some(_) => {}
        None => {
            let mut empty = world.checks.empty_fetches.lock();
            if empty.len() < 4096 {
                empty.push((server, request.height, hash));
            }
        }
    }
}

fn empty_fetch(validator: usize, height: u64, hash: &[u8; 32]) -> Violation {
    Violation::Served {
        validator,
        why: format!(
            "answered nothing to a fetch of block {} at height {height}, which it had decided",
            hex::encode(hash)
        ),
    }
}

/// Samples, every half second, what each running honest validator keeps.
pub(crate) async fn sample(world: Arc<World>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for v in (0..VALIDATORS).filter(|v| world.plan.honest(*v)) {
            let slot = world.validators[v].lock();
            let Some(r) = slot.running.as_ref() else {
                continue;
            };
            let status = *r.status.borrow();
            {
                let mut stats = world.stats.lock();
                stats.most_proposers_remembered = stats
                    .most_proposers_remembered
                    .max(u64::from(status.remembered_proposers));
            }
            for accused in (0..VALIDATORS).filter(|a| status.charged_validators & (1 << a) != 0) {
                if world.plan.honest(accused) {
                    world.checks.violate(Violation::Accused {
                        validator: v,
                        accused: accused as u32,
                    });
                }
            }
            if status.stale_waits > 0 {
                world.checks.violate(Violation::Waited {
                    validator: v,
                    count: status.stale_waits,
                });
            }
            // What the driver keeps because of its peers (the inbox and the body cache bound
            // themselves on every push: no sample could see them over).
            let limits = [
                (
                    "bodies kept for peers",
                    u64::from(status.kept_bodies),
                    u64::from(KEPT_BODIES_BOUND),
                ),
                (
                    "blocks executed at one height",
                    u64::from(status.executed_blocks),
                    u64::from(EXECUTED_BLOCKS_BOUND),
                ),
                (
                    "proposers remembered at one height",
                    u64::from(status.remembered_proposers),
                    (crate::driver::proposers::PER_PROPOSER * VALIDATORS) as u64,
                ),
            ];
            for (what, value, bound) in limits {
                if value > bound {
                    world.checks.violate(Violation::Memory {
                        validator: v,
                        what,
                        value,
                        bound,
                    });
                }
            }
        }
    }
}

/// The checks at the end of a run, over every validator's database; fills in `report`.
pub(crate) fn at_end(world: &World, report: &mut Report) {
    let g = &world.generated.genesis;
    let set = g.validator_set();
    let mut chains: Vec<(usize, Vec<Hash32>)> = Vec::new();
    for v in 0..VALIDATORS {
        let slot = world.validators[v].lock();
        let Some(r) = slot.running.as_ref() else {
            continue;
        };
        let storage = r.chain.storage().clone();
        let chain = r.chain.clone();
        if world.plan.honest(v) {
            report.charged += u64::from(r.status.borrow().charged);
        }
        drop(slot);
        let head = storage.head().map(|h| h.height).unwrap_or(0);
        let mut hashes = Vec::new();
        let mut seen: HashSet<[u8; 32]> = HashSet::new();
        let mut at: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        for height in 1..=head {
            let invalid = |why: String| Violation::Validity {
                validator: v,
                height,
                why,
            };
            let d = match crate::sync_server::decision_at(&storage, height) {
                Ok(d) => d,
                Err(e) => {
                    world.checks.violate(invalid(format!("unreadable: {e}")));
                    break;
                }
            };
            let (Some(block), Some(cert)) = (d.block, d.certificate) else {
                world
                    .checks
                    .violate(invalid("no block or certificate".into()));
                break;
            };
            let hash = Hash32::of(&block.header);
            hashes.push(hash);
            if world.plan.honest(v) {
                if let Err(e) = verify_certificate(&cert, &g.chain_id, &set, height, &hash) {
                    world.checks.violate(invalid(format!("certificate: {e}")));
                }
                match decode_header(&block.header) {
                    Ok(header) => {
                        if let Err(e) = check_body(&header, &block.transactions, &g.params) {
                            world.checks.violate(invalid(format!("body: {e}")));
                        }
                        // The version its committed schedule puts at the height (ADR 0019).
                        let version = chain.protocol_at(height);
                        if header.protocol_version != crate::protocol::header_field(version) {
                            world.checks.violate(invalid(format!(
                                "header's protocol_version {} where version {version} is in force",
                                header.protocol_version
                            )));
                        }
                    }
                    Err(e) => world.checks.violate(invalid(format!("header: {e}"))),
                }
            }
            for tx in &block.transactions {
                let hash = quorate_proto::tx::tx_hash(&tx.body);
                let h = hash.0;
                let leaf = quorate_proto::tx::tx_leaf(&hash, tx).0;
                let forged = world
                    .checks
                    .signed
                    .lock()
                    .get(&h)
                    .is_some_and(|l| *l != leaf);
                if forged && world.plan.honest(v) {
                    world.checks.violate(Violation::Forged {
                        validator: v,
                        tx: hex::encode(h),
                        height,
                    });
                }
                if !seen.insert(h) {
                    world.checks.violate(Violation::Duplicate {
                        validator: v,
                        tx: hex::encode(h),
                        first: at.get(&h).copied().unwrap_or(0),
                        second: height,
                    });
                }
                at.insert(h, height);
            }
        }
        if world.plan.honest(v) {
            for (tx, height) in world.checks.acknowledged.lock().iter() {
                if *height <= head && at.get(tx) != Some(height) {
                    world.checks.violate(Violation::Lost {
                        validator: v,
                        what: format!(
                            "transaction {} acknowledged at height {height} is not there",
                            hex::encode(tx)
                        ),
                    });
                }
            }
        }
        chains.push((v, hashes));
    }
    for (a, ca) in &chains {
        for (b, cb) in &chains {
            if a >= b {
                continue;
            }
            if let Some((i, (x, y))) = ca.iter().zip(cb).enumerate().find(|(_, (x, y))| x != y) {
                world.checks.violate(Violation::Agreement {
                    height: i as u64 + 1,
                    a: *a,
                    hash_a: x.to_hex(),
                    b: *b,
                    hash_b: y.to_hex(),
                });
            }
        }
    }
    let commits = world.checks.commits.lock().clone();
    for (validator, height, hash) in world.checks.empty_fetches.lock().iter() {
        if commits.get(height).is_some_and(|(_, h)| h == hash) {
            world.checks.violate(empty_fetch(*validator, *height, hash));
        }
    }
    report.height = world.honest_heights().into_iter().min().unwrap_or(0);
    let (delivered, lost, elsewhere) = world.net.counters();
    report.delivered = delivered;
    report.lost = lost;
    report.fetched_elsewhere = elsewhere;
    report.byzantine_acts = (0..VALIDATORS)
        .map(|v| world.validators[v].lock().acts())
        .sum();
    report.trace = world.checks.trace();
}

/// Honest validator `validator`'s driver inbox once held `most` copies of one consensus
/// message at once: a liar re-publishing another validator's genuine messages could push that
/// validator's other messages out of its queue with them.
pub(crate) fn copies(world: &World, validator: usize, most: u32) {
    if most > 1 {
        world.checks.violate(Violation::Memory {
            validator,
            what: "copies of one consensus message waiting at once",
            value: u64::from(most),
            bound: 1,
        });
    }
}

/// The height a gossiped proposal or vote is for (none if it does not decode as one).
fn consensus_height(m: &quorate_proto::v1::ConsensusMessage) -> Option<u64> {
    match crate::driver::codec::message_from_proto(m).ok()? {
        quorate_consensus::Message::Proposal(p) => Some(p.proposal.height),
        quorate_consensus::Message::Vote(v) => Some(v.vote.height),
        quorate_consensus::Message::Decision(c) => Some(c.height),
    }
}
