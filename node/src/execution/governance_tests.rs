//! Governance by the organisations through admission, block execution and commit (ADR 0016):
//! a proposal runs only once its kind's threshold of current members approved it, and never
//! after it expired or ran.

use bytes::Bytes;
use prost::Message;
use quorate_proto::v1::tx_body::Payload as Wire;
use quorate_proto::v1::{
    admin, governance, Admin, ExecStatus, Governance, GovernanceMember, GovernancePolicy,
    ProposalRecord, Propose, SetTrustedDeployer, Transaction, ValidatorEntry,
};

use quorate_proto::Address;

use crate::testutil::TestChain;
use crate::verified_tx::AdmissionError;

const FUEL: u64 = 100_000;
/// Fuel of a proposal carrying code (paid per byte, as a deploy).
const CODE_FUEL: u64 = 300_000;

/// Accounts 1..=4 are the members, account 0 the genesis admin, account 5 a bystander.
fn policy(t: &TestChain, members: &[usize], k: u32, policy_k: u32) -> GovernancePolicy {
    GovernancePolicy {
        members: members
            .iter()
            .map(|&i| GovernanceMember {
                name: format!("org-{i}"),
                address: Bytes::copy_from_slice(&t.addr(i).0),
            })
            .collect(),
        validators: k,
        deployers: k,
        params: k,
        upgrades: k,
        policy: policy_k,
        proposal_lifetime: 50,
    }
}

fn admin_wire(action: admin::Action) -> Admin {
    Admin {
        action: Some(action),
    }
}

fn trust(t: &TestChain, account: usize) -> Admin {
    admin_wire(admin::Action::SetTrustedDeployer(SetTrustedDeployer {
        account: Bytes::copy_from_slice(&t.addr(account).0),
        trusted: true,
    }))
}

struct Members {
    t: TestChain,
    nonces: [u64; 6],
}

impl Members {
    /// A chain whose admin (account 0) handed it to members 1..=4: `k` of them for every kind
    /// but the policy, which needs all four.
    fn new(k: u32) -> Self {
        let t = TestChain::new(6);
        let mut m = Self { t, nonces: [0; 6] };
        let p = policy(&m.t, &[1, 2, 3, 4], k, 4);
        let tx = m.tx(
            0,
            Wire::Admin(admin_wire(admin::Action::SetPolicy(p.clone()))),
        );
        m.run(&tx);
        assert_eq!(m.t.receipt(&tx).status, ExecStatus::Success as i32);
        let storage = m.t.chain.storage();
        assert_eq!(storage.governance().expect("read"), Some(p));
        assert_eq!(storage.admin().expect("read"), None, "the admin role ends");
        m
    }

    fn tx(&mut self, from: usize, payload: Wire) -> Transaction {
        let tx = self.t.signed(from, self.nonces[from], FUEL, payload);
        self.nonces[from] += 1;
        tx
    }

    fn propose(&mut self, from: usize, action: Admin, lifetime: u64) -> Transaction {
        self.tx(
            from,
            Wire::Governance(Governance {
                action: Some(governance::Action::Propose(Propose {
                    action: Some(action),
                    lifetime,
                    memo: "for the record".into(),
                })),
            }),
        )
    }

    /// A proposal carrying code (an upgrade), with the fuel its bytes cost.
    fn propose_code(&mut self, from: usize, action: Admin) -> Transaction {
        let tx = self.t.signed(
            from,
            self.nonces[from],
            CODE_FUEL,
            Wire::Governance(Governance {
                action: Some(governance::Action::Propose(Propose {
                    action: Some(action),
                    lifetime: 0,
                    memo: String::new(),
                })),
            }),
        );
        self.nonces[from] += 1;
        tx
    }

    fn approve(&mut self, from: usize, number: u64) -> Transaction {
        self.tx(
            from,
            Wire::Governance(Governance {
                action: Some(governance::Action::Approve(number)),
            }),
        )
    }

    fn commit(&self, txs: &[Transaction]) {
        self.t.admit_ok(txs.to_vec());
        self.t.produce().expect("block");
    }

    /// Commits `tx` alone; its receipt.
    fn run(&self, tx: &Transaction) -> quorate_proto::v1::Receipt {
        self.commit(std::slice::from_ref(tx));
        self.t.receipt(tx)
    }

    /// Commits an approval of `number` by `from`; its receipt.
    fn approved(&mut self, from: usize, number: u64) -> quorate_proto::v1::Receipt {
        let tx = self.approve(from, number);
        self.run(&tx)
    }

    /// A transfer of 1 by the bystander (account 5), to fill blocks.
    fn filler(&mut self) -> Transaction {
        let tx = self.t.transfer(5, self.t.addr(0), 1, self.nonces[5]);
        self.nonces[5] += 1;
        tx
    }

    /// Transactions in the committed block at `height`.
    fn block_size(&self, height: u64) -> usize {
        self.t
            .chain
            .storage()
            .block_with_txs(height, false)
            .expect("read")
            .expect("block")
            .0
            .tx_hashes
            .len()
    }

    fn record(&self, number: u64) -> ProposalRecord {
        self.t
            .chain
            .storage()
            .proposal(number)
            .expect("read")
            .expect("recorded")
    }

    fn trusted(&self, account: usize) -> bool {
        self.t
            .chain
            .storage()
            .is_trusted_deployer(&self.t.addr(account))
            .expect("read")
    }
}

#[test]
fn an_action_runs_only_when_its_threshold_of_members_approved_and_each_step_is_recorded() {
    let mut m = Members::new(3);
    // Outsiders and the former admin are refused before a block.
    let outsider = m.t.signed(
        5,
        0,
        FUEL,
        Wire::Governance(Governance {
            action: Some(governance::Action::Approve(1)),
        }),
    );
    let refused = m.t.admission.admit(vec![outsider]).expect("admit");
    assert!(matches!(
        refused[0].result,
        Err(AdmissionError::NotMember { governed: true, .. })
    ));
    let former_admin = m.t.signed(0, 1, FUEL, Wire::Admin(trust(&m.t, 5)));
    let refused = m.t.admission.admit(vec![former_admin]).expect("admit");
    assert!(matches!(
        refused[0].result,
        Err(AdmissionError::NotAdmin { admin: None, .. })
    ));

    let proposal = m.propose(1, trust(&m.t, 5), 0);
    let receipt = m.run(&proposal);
    assert_eq!(
        receipt.status,
        ExecStatus::Success as i32,
        "{}",
        receipt.error
    );
    let record = ProposalRecord::decode(receipt.return_data.as_ref()).expect("record");
    assert_eq!(record.number, 1);
    assert_eq!(record.approvals.len(), 1);
    assert_eq!(receipt.events[0].source, "governance");
    assert_eq!(receipt.events[0].kind, "proposed");
    let proposed_at = record.height;
    assert_eq!(record.open_until, proposed_at + 50, "the policy's lifetime");

    let second = m.approve(2, 1);
    assert_eq!(m.run(&second).status, ExecStatus::Success as i32);
    assert!(!m.trusted(5), "two of three approvals change nothing");
    assert_eq!(m.record(1).executed_height, 0);

    let again = m.approve(2, 1);
    let r = m.run(&again);
    assert_eq!(r.status, ExecStatus::BadInput as i32);
    assert!(r.error.contains("already approved"), "{}", r.error);
    assert!(
        !m.trusted(5),
        "a second approval by one member does not count"
    );

    let third = m.approve(3, 1);
    let r = m.run(&third);
    assert_eq!(r.status, ExecStatus::Success as i32);
    assert!(m.trusted(5), "the third approval runs it");
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["approved", "executed"]);
    let record = m.record(1);
    let who: Vec<Vec<u8>> = record.approvals.iter().map(|a| a.member.to_vec()).collect();
    assert_eq!(
        who,
        [1, 2, 3].map(|i| m.t.addr(i).0.to_vec()),
        "who approved, in order"
    );
    assert_eq!(
        record.approvals[2].tx_hash.as_ref(),
        quorate_proto::tx::tx_hash(&third.body).0
    );
    assert_eq!(record.executed_height, record.approvals[2].height);
    assert_eq!(record.outcome, ExecStatus::Success as i32);

    let late = m.approve(4, 1);
    let r = m.run(&late);
    assert_eq!(r.status, ExecStatus::BadInput as i32);
    assert!(r.error.contains("was executed"), "{}", r.error);
    assert_eq!(m.record(1).approvals.len(), 3);
    assert_eq!(m.t.chain.storage().proposal_count().expect("read"), 1);
}

#[test]
fn an_expired_proposal_never_runs_and_a_failing_action_closes_its_proposal() {
    let mut m = Members::new(2);
    let new_validator = quorate_proto::Keypair::generate().public();
    let add = admin_wire(admin::Action::AddValidator(ValidatorEntry {
        public_key: Bytes::copy_from_slice(&new_validator.0),
        name: "org-e".into(),
    }));
    let before = m.t.chain.storage().validator_schedule().expect("read");
    let p = m.propose(1, add, 1);
    m.run(&p);
    let open_until = m.record(1).open_until;
    // Blocks pass (transfers by the bystander) until the proposal's last height is behind.
    while m.t.chain.head().height <= open_until {
        let filler = m.filler();
        m.commit(&[filler]);
    }
    let late = m.approve(2, 1);
    let r = m.run(&late);
    assert_eq!(r.status, ExecStatus::BadInput as i32);
    assert!(r.error.contains("expired"), "{}", r.error);
    assert_eq!(
        m.t.chain.storage().validator_schedule().expect("read"),
        before,
        "an expired proposal changes nothing"
    );
    assert_eq!(m.record(1).approvals.len(), 1);

    // Removing a validator that is not in the set: the threshold is reached, the action
    // fails, and the proposal closes with the reason on record.
    let stranger = quorate_proto::Keypair::generate().public();
    let remove = admin_wire(admin::Action::RemoveValidator(Bytes::copy_from_slice(
        &stranger.0,
    )));
    let p = m.propose(3, remove, 0);
    m.run(&p);
    let r = m.approved(4, 2);
    assert_eq!(
        r.status,
        ExecStatus::Success as i32,
        "the approval itself took"
    );
    let record = m.record(2);
    assert_ne!(record.executed_height, 0);
    assert_eq!(record.outcome, ExecStatus::BadInput as i32);
    assert!(!record.error.is_empty());
    let r = m.approved(1, 2);
    assert!(r.error.contains("was executed"), "{}", r.error);
}

#[test]
fn a_policy_change_needs_its_own_threshold_and_removed_members_stop_counting() {
    let mut m = Members::new(3);
    // Members 1 and 2 approve trusting account 4: two of the three approvals needed.
    let p = m.propose(1, trust(&m.t, 4), 0);
    m.run(&p);
    m.approved(2, 1);
    // The policy drops member 2 and asks all three remaining members for deployers.
    let mut smaller = policy(&m.t, &[1, 3, 4], 3, 3);
    smaller.policy = 3;
    let change = admin_wire(admin::Action::SetPolicy(smaller.clone()));
    let p = m.propose(1, change, 0);
    m.run(&p);
    for member in [2, 3] {
        m.approved(member, 2);
        assert_eq!(
            m.record(2).executed_height,
            0,
            "a policy change needs all four"
        );
    }
    assert!(!m.trusted(4));
    let r = m.approved(4, 2);
    assert_eq!(r.status, ExecStatus::Success as i32);
    assert_eq!(
        m.t.chain.storage().governance().expect("read"),
        Some(smaller)
    );
    // Member 3 approves proposal 1: approvals of 1, 2 and 3, of which 1 and 3 count (2 left
    // the policy): two of the three needed, so it does not run. Were 2 still counted, this
    // third approval would run it.
    let r = m.approved(3, 1);
    assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
    assert!(
        !m.trusted(4),
        "a removed member's approval no longer counts"
    );
    assert_eq!(m.record(1).approvals.len(), 3, "but stays on record");
    let removed = m.t.signed(
        2,
        m.nonces[2],
        FUEL,
        Wire::Governance(Governance {
            action: Some(governance::Action::Approve(1)),
        }),
    );
    let refused = m.t.admission.admit(vec![removed]).expect("admit");
    assert!(matches!(
        refused[0].result,
        Err(AdmissionError::NotMember { .. })
    ));
    m.approved(4, 1);
    assert!(m.trusted(4), "the third current member's approval runs it");
}

#[test]
fn approvals_are_taken_until_the_last_height_lifetimes_are_capped_and_numbers_checked() {
    let mut m = Members::new(3);
    let p = m.propose(1, trust(&m.t, 5), 1_000_000);
    let r = m.run(&p);
    let record = ProposalRecord::decode(r.return_data.as_ref()).expect("record");
    assert_eq!(
        record.open_until,
        record.height + 50,
        "a lifetime above the policy's is cut to it"
    );
    // A proposal open for one height: approved at its last height it still counts.
    let p = m.propose(1, trust(&m.t, 0), 1);
    m.run(&p);
    let open_until = m.record(2).open_until;
    let second = m.approve(2, 2);
    let third = m.approve(3, 2);
    m.commit(&[second, third]);
    let record = m.record(2);
    assert_eq!(record.executed_height, open_until, "both in its last block");
    assert!(m.trusted(0));
    // No proposal 0, and none numbered past the latest.
    let zero = m.t.signed(
        2,
        m.nonces[2],
        FUEL,
        Wire::Governance(Governance {
            action: Some(governance::Action::Approve(0)),
        }),
    );
    let refused = m.t.admission.admit(vec![zero]).expect("admit");
    assert!(matches!(
        refused[0].result,
        Err(AdmissionError::InvalidPayload(_))
    ));
    let r = m.approved(2, 9);
    assert_eq!(r.status, ExecStatus::BadInput as i32);
    assert!(r.error.contains("no proposal 9"), "{}", r.error);
}

#[test]
fn handing_the_chain_to_one_admin_ends_every_open_proposal_for_good() {
    let mut m = Members::new(2);
    let p = m.propose(1, trust(&m.t, 5), 0);
    m.run(&p);
    // All four hand the chain to account 0 (the policy kind needs four).
    let hand_over = admin_wire(admin::Action::SetAdmin(Bytes::copy_from_slice(
        &m.t.addr(0).0,
    )));
    let p = m.propose(2, hand_over, 0);
    m.run(&p);
    for member in [1, 3, 4] {
        m.approved(member, 2);
    }
    let storage = m.t.chain.storage();
    assert_eq!(storage.admin().expect("read"), Some(m.t.addr(0)));
    assert_eq!(storage.governance().expect("read"), None);
    assert_eq!(storage.governance_epoch().expect("read"), 1);
    // The admin puts the same policy back within proposal 1's lifetime: proposal 1, made
    // before the hand-over, can no longer run.
    let again = policy(&m.t, &[1, 2, 3, 4], 2, 4);
    let tx = m.tx(0, Wire::Admin(admin_wire(admin::Action::SetPolicy(again))));
    m.run(&tx);
    let r = m.approved(2, 1);
    assert_eq!(r.status, ExecStatus::BadInput as i32);
    assert!(r.error.contains("has since ended"), "{}", r.error);
    assert!(!m.trusted(5));
    // New proposals run as usual.
    let p = m.propose(3, trust(&m.t, 5), 0);
    m.run(&p);
    m.approved(4, 3);
    assert!(m.trusted(5));
}

/// `set_params` of `values`.
fn set_params(values: &[(&str, u64)]) -> Admin {
    admin_wire(admin::Action::SetParams(quorate_proto::v1::ParamChanges {
        values: values
            .iter()
            .map(|(name, value)| quorate_proto::v1::ParamValue {
                name: (*name).to_owned(),
                value: *value,
            })
            .collect(),
    }))
}

#[test]
fn a_parameter_change_takes_force_at_the_decided_height_and_not_before() {
    let mut m = Members::new(2);
    let delay = m.t.genesis.params.validator_set_delay;
    let price = m.t.genesis.params.fuel_price;
    let p = m.propose(
        1,
        set_params(&[("block_max_txs", 2), ("fuel_price", price + 1)]),
        0,
    );
    m.run(&p);
    let r = m.approved(2, 1);
    let executed = m.record(1).executed_height;
    assert_ne!(executed, 0, "{}", r.error);
    let effective = executed + delay;
    let book = m.t.chain.params().clone();
    assert_eq!(book.at(effective - 1).block_max_txs, 10_000);
    assert_eq!(book.at(effective).block_max_txs, 2);
    assert_eq!(
        book.after(executed).first().map(|(h, _)| *h),
        Some(effective)
    );
    // Until then blocks take as many transactions as before, at the old price.
    while m.t.chain.head().height + 1 < effective {
        let txs: Vec<Transaction> = (0..3).map(|_| m.filler()).collect();
        m.t.admit_ok(txs.clone());
        let head = m.t.produce().expect("block");
        assert_eq!(m.block_size(head.height), 3);
        assert_eq!(
            m.t.receipt(&txs[0]).fee,
            m.t.genesis.params.transfer_fuel * price
        );
    }
    // From the decided height on: two per block, at the new price, on any validator judging
    // the block (a block of three is refused).
    let txs: Vec<Transaction> = (0..3).map(|_| m.filler()).collect();
    m.t.admit_ok(txs.clone());
    let params = m.t.chain.params_at(effective);
    let candidates = m.t.mempool.lock().select(10, 1 << 20);
    assert_eq!(candidates.len(), 3);
    let (block, _) =
        m.t.chain
            .propose(candidates, m.t.validator.public().0, 1)
            .expect("propose");
    let refused =
        m.t.chain
            .validate(&block.header_bytes, block.txs.clone(), None)
            .expect("validate");
    assert!(
        matches!(
            refused,
            Err(crate::block_rules::BlockRejection::TooManyTxs { max: 2, .. })
        ),
        "{refused:?}"
    );
    let head = m.t.produce().expect("block");
    assert_eq!(head.height, effective);
    assert_eq!(m.block_size(head.height), 2);
    assert_eq!(
        m.t.receipt(&txs[0]).fee,
        m.t.genesis.params.transfer_fuel * (price + 1)
    );
    assert_eq!(params.fuel_price, price + 1);
    // A second change, decided later, composes with the first; a restart knows every height.
    let p = m.propose(1, set_params(&[("block_max_txs", 5)]), 0);
    m.run(&p);
    m.approved(2, 2);
    let second = m.record(2).executed_height + delay;
    let before: Vec<_> = [1, effective - 1, effective, second - 1, second, second + 50]
        .into_iter()
        .map(|h| (h, m.t.chain.params_at(h)))
        .collect();
    assert_eq!(before[4].1.block_max_txs, 5);
    assert_eq!(before[4].1.fuel_price, price + 1, "the first change stays");
    let t = std::mem::replace(&mut m.t, TestChain::new(1)).reopen();
    for (h, p) in before {
        assert_eq!(t.chain.params_at(h), p, "height {h} after a restart");
    }
}

#[test]
fn a_transaction_admitted_before_a_change_is_judged_by_its_blocks_parameters_alike() {
    let mut m = Members::new(1);
    let delay = m.t.genesis.params.validator_set_delay;
    let fuel = m.t.genesis.params.transfer_fuel;
    let p = m.propose(1, set_params(&[("transfer_fuel", fuel * 2)]), 0);
    m.run(&p);
    let effective = m.record(1).executed_height + delay;
    while m.t.chain.head().height + 2 < effective {
        let filler = m.filler();
        m.commit(&[filler]);
    }
    // Admitted for the height before the change, its fuel limit the old transfer fuel.
    let late = m.t.transfer(4, m.t.addr(0), 1, 0);
    m.t.admit_ok(vec![late.clone()]);
    // The block before the change is cut without it (another transaction only).
    let filler = m.filler();
    m.t.admit_ok(vec![filler.clone()]);
    let hash = |t: &Transaction| quorate_proto::tx::tx_hash(&t.body);
    let candidates: Vec<_> =
        m.t.mempool
            .lock()
            .select(10, 1 << 20)
            .into_iter()
            .filter(|v| v.hash == hash(&filler))
            .collect();
    let (block, _) =
        m.t.chain
            .propose(candidates, m.t.validator.public().0, 1)
            .expect("propose");
    let cert = m.t.chain.solo_certificate(&m.t.validator, 0, &block);
    m.t.chain.commit(&block, &cert).expect("commit");
    assert_eq!(m.t.chain.head().height + 1, effective);
    // At the change's height the copy in the mempool is not includable...
    let pending = m.t.mempool.lock().select(10, 1 << 20);
    assert!(pending.iter().any(|v| v.hash == hash(&late)));
    let (_, dropped) =
        m.t.chain
            .propose(pending, m.t.validator.public().0, 1)
            .expect("propose");
    let why = dropped
        .iter()
        .find(|(h, _)| *h == hash(&late))
        .map(|(_, e)| e.clone());
    assert!(
        matches!(&why, Some(crate::execution::InvalidTx::OutsideParams(w)) if w.contains("below")),
        "{why:?}"
    );
    // ... and a copy fetched from a peer meets the same verdict.
    let fetched = crate::verified_tx::verify_block_txs(
        vec![late],
        &m.t.genesis.chain_id,
        &m.t.chain.params_at(effective),
    );
    assert!(matches!(
        fetched,
        Err((0, AdmissionError::FuelLimitTooLow { .. }))
    ));
}

#[test]
fn a_parameter_change_past_the_rules_fails_and_changes_nothing() {
    let mut m = Members::new(1);
    let genesis = m.t.genesis.params.clone();
    for (values, why) in [
        (
            vec![("block_max_txs", u64::from(genesis.block_max_txs) + 1)],
            "genesis value",
        ),
        (vec![("validator_set_delay", 2)], "validator_set_delay"),
        (
            vec![("max_tx_bytes", u64::from(u32::MAX) + 1)],
            "does not fit",
        ),
        (vec![("max_tx_bytes", 1_000)], "may not lower it below"),
    ] {
        let n = m.t.chain.storage().proposal_count().expect("read") + 1;
        let p = m.propose(1, set_params(&values), 0);
        m.run(&p);
        let record = m.record(n);
        assert_eq!(record.outcome, ExecStatus::BadInput as i32);
        assert!(record.error.contains(why), "{}", record.error);
    }
    assert_eq!(m.t.chain.storage().param_schedule().expect("read"), None);
    // Names that are not governed (the engine's limits among them) never reach a block.
    for name in ["contracts.max_memory_bytes", "contracts.max_code_bytes"] {
        let bad =
            m.t.signed(1, m.nonces[1], FUEL, Wire::Admin(set_params(&[(name, 1)])));
        let refused = m.t.admission.admit(vec![bad]).expect("admit");
        assert!(matches!(
            refused[0].result,
            Err(AdmissionError::InvalidPayload(_))
        ));
    }
}

/// An upgrade of the system contract `name` to `code`.
fn upgrade(name: &str, code: Vec<u8>) -> Admin {
    admin_wire(admin::Action::UpgradeContract(
        quorate_proto::v1::UpgradeContract {
            name: name.into(),
            code: code.into(),
        },
    ))
}

#[test]
fn a_system_contract_upgraded_in_place_keeps_its_storage_and_old_blocks_replay_alike() {
    use crate::counter_contract::counter_without_init;
    use quorate_genesis::system::REMITTANCE;
    let mut m = Members::new(2);
    let delay = m.t.genesis.params.validator_set_delay;
    let contract = Address::of_system_contract(REMITTANCE);
    let call = |m: &mut Members, from: usize, method: &str| {
        m.tx(
            from,
            Wire::Call(quorate_proto::v1::Call {
                contract: Bytes::copy_from_slice(&contract.0),
                method: method.into(),
                args: Bytes::new(),
                value: 0,
            }),
        )
    };
    let value = |r: &quorate_proto::v1::Receipt| {
        u64::from_le_bytes(r.return_data.as_ref().try_into().expect("8 bytes"))
    };
    // Code with an `init` is refused (the contract's storage stays; no init runs again).
    let p = m.propose_code(
        1,
        upgrade(REMITTANCE, crate::counter_contract::counter_wasm()),
    );
    m.run(&p);
    m.approved(2, 1);
    assert!(m.record(1).error.contains("init"), "{}", m.record(1).error);
    // Version 1: a counter adding one, decided at X and in force from X + delay.
    let p = m.propose_code(1, upgrade(REMITTANCE, counter_without_init("n", 1)));
    m.run(&p);
    m.approved(2, 2);
    let record = m.record(2);
    assert_eq!(
        record.outcome,
        ExecStatus::Success as i32,
        "{}",
        record.error
    );
    let effective = record.executed_height + delay;
    let storage = m.t.chain.storage().clone();
    let before = storage.contract(&contract).expect("read").expect("record");
    assert_eq!(before.version, 0);
    // Until then the remittance code runs: it has no `inc`.
    while m.t.chain.head().height + 1 < effective {
        let tx = call(&mut m, 5, "inc");
        let r = m.run(&tx);
        assert_ne!(
            r.status,
            ExecStatus::Success as i32,
            "inc ran before the upgrade"
        );
    }
    let tx = call(&mut m, 5, "inc");
    let r = m.run(&tx);
    assert_eq!(m.t.chain.head().height, effective);
    assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
    assert_eq!(value(&r), 1);
    let after = storage.contract(&contract).expect("read").expect("record");
    assert_eq!((after.version, after.upgraded_at), (1, effective));
    assert_eq!(
        after.height, before.height,
        "same contract, same deploy height"
    );
    let tx = call(&mut m, 5, "inc");
    assert_eq!(value(&m.run(&tx)), 2);
    // Version 2 adds two: it reads what version 1 stored.
    let p = m.propose_code(3, upgrade(REMITTANCE, counter_without_init("n", 2)));
    m.run(&p);
    m.approved(4, 3);
    let second = m.record(3).executed_height + delay;
    while m.t.chain.head().height + 1 < second {
        let tx = call(&mut m, 5, "get");
        assert_eq!(value(&m.run(&tx)), 2);
    }
    let tx = call(&mut m, 5, "inc");
    assert_eq!(value(&m.run(&tx)), 4, "the old state, the new step");
    assert_eq!(
        storage
            .contract(&contract)
            .expect("read")
            .expect("record")
            .version,
        2
    );
    // Another validator replays every block from genesis, before and after both upgrades:
    // the same state root at every height.
    let replica = TestChain::with_genesis(m.t.genesis.clone(), m.t.validator.clone());
    let top = m.t.chain.head().height;
    for h in 1..=top {
        let (block, txs) = storage
            .block_with_txs(h, true)
            .expect("read")
            .expect("held");
        let txs = crate::verified_tx::verify_block_txs(
            txs.into_iter().filter_map(|t| t.transaction).collect(),
            &m.t.genesis.chain_id,
            &replica.chain.params_at(h),
        )
        .expect("verify");
        let executed = replica
            .chain
            .validate(&block.header, txs, None)
            .expect("validate")
            .unwrap_or_else(|e| panic!("block {h} refused on replay: {e}"));
        replica
            .chain
            .commit(&executed, block.certificate.as_ref().expect("certificate"))
            .expect("commit");
        // Validation re-executed the block and compared its roots with the header's.
        assert_eq!(replica.chain.head().hash, block.hash(), "height {h}");
    }
    assert_eq!(replica.chain.head().hash, m.t.chain.head().hash);
}

#[test]
fn an_upgrade_to_come_is_replaced_or_cancelled_and_every_decided_code_stays_in_the_state() {
    use crate::counter_contract::counter_without_init;
    use quorate_genesis::system::{system_contract, REMITTANCE};
    use quorate_proto::crypto::Hash32;
    let mut m = Members::new(1);
    let contract = Address::of_system_contract(REMITTANCE);
    let storage = m.t.chain.storage().clone();
    let original = system_contract(REMITTANCE).expect("release").wasm.to_vec();
    let (v1, v2) = (counter_without_init("n", 1), counter_without_init("n", 2));
    let pending = |s: &crate::storage::Storage| {
        s.entry(&crate::storage::EntryKey::upgrades())
            .expect("read")
            .map(|b| quorate_proto::v1::PendingUpgrades::decode(b.as_slice()).expect("decode"))
            .unwrap_or_default()
            .upgrades
    };
    let run = |m: &mut Members, code: Vec<u8>| {
        let p = m.propose_code(1, upgrade(REMITTANCE, code));
        m.run(&p)
    };
    // Invalid code never reaches a block.
    let bad = m.propose_code(1, upgrade(REMITTANCE, b"\0asm junk".to_vec()));
    m.nonces[1] -= 1;
    let refused = m.t.admission.admit(vec![bad]).expect("admit");
    assert!(matches!(
        refused[0].result,
        Err(AdmissionError::InvalidCode(_))
    ));
    run(&mut m, v1.clone());
    assert_eq!(pending(&storage)[0].code_hash.as_ref(), Hash32::of(&v1).0);
    // A newer decision replaces it; the first code stays bound to the state.
    let r = run(&mut m, v2.clone());
    assert!(r.events.iter().any(|e| e.kind == "scheduled"), "{r:?}");
    assert_eq!(pending(&storage).len(), 1);
    assert_eq!(pending(&storage)[0].code_hash.as_ref(), Hash32::of(&v2).0);
    assert!(run(&mut m, v2.clone())
        .events
        .iter()
        .all(|e| e.kind != "scheduled"));
    assert!(
        m.record(3).error.contains("already to run"),
        "{}",
        m.record(3).error
    );
    // No code cancels what was to come.
    let r = run(&mut m, Vec::new());
    assert!(r.events.iter().any(|e| e.kind == "cancelled"), "{r:?}");
    assert!(pending(&storage).is_empty());
    let record = storage.contract(&contract).expect("read").expect("record");
    assert_eq!(record.code().expect("hash"), Hash32::of(&original));
    let retired: Vec<Hash32> = record
        .retired
        .iter()
        .map(|b| Hash32::from_slice(b).expect("hash"))
        .collect();
    assert_eq!(retired, [Hash32::of(&v1), Hash32::of(&v2)]);
    // A snapshot carries all three codes with the record.
    let entry = quorate_proto::v1::StateEntry {
        kind: quorate_proto::v1::StateKind::Contract as i32,
        key: contract.0.to_vec().into(),
        value: record.encode_to_vec().into(),
    };
    assert_eq!(
        crate::storage::code_hashes_of(&entry).expect("hashes"),
        [Hash32::of(&original), Hash32::of(&v1), Hash32::of(&v2)]
    );
    // With nothing pending, the remittance code keeps running past every height.
    for _ in 0..m.t.genesis.params.validator_set_delay + 1 {
        let f = m.filler();
        m.commit(&[f]);
    }
    let record = storage.contract(&contract).expect("read").expect("record");
    assert_eq!(
        (record.version, record.code().expect("hash")),
        (0, Hash32::of(&original))
    );
}
