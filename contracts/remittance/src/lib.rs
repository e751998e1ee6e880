//! The remittance system contract. A remitter deposits native tokens into named entries of
//! its reserve fund list (held by this contract). A remittance names the remittee, the
//! amount, and reserved amounts allocated from entries of the list; it succeeds only if the
//! allocated amounts cover the amount. Then the amount is taken from those entries (in
//! allocation order) and paid to the remittee's account — all or nothing.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use quorate_sdk::storage::Map;
use quorate_sdk::{context, ensure, events, methods, Address, Error, Result};

/// Messages of `proto/proto/quorate/contracts/v1/remittance.proto`.
pub mod pb {
    include!(concat!(
        env!("OUT_DIR"),
        "/quorate.contracts.remittance.v1.rs"
    ));
}
use pb::{
    Allocation, DepositArgs, HistoryArgs, RemitArgs, Remittance, RemittanceArgs, RemittanceList,
    ReserveChange, ReserveEntry, ReserveList, ReservesArgs, WithdrawArgs,
};

quorate_sdk::interface!(concat!(env!("OUT_DIR"), "/interface.bin"));

/// Most entries in one reserve fund list.
const MAX_ENTRIES: usize = 16;
/// Longest entry name.
const MAX_ENTRY_NAME: usize = 32;
/// Most allocations in one remittance.
const MAX_ALLOCATIONS: usize = 16;
/// Longest memo.
const MAX_MEMO: usize = 256;

static RESERVES: Map<Address, ReserveList> = Map::new("reserves");
static REMITTANCES: Map<u64, Remittance> = Map::new("remittance");
/// Per account: how many remittances it took part in, and their ids by position.
static HISTORY_LEN: Map<Address, u64> = Map::new("history_len");
static HISTORY: Map<(Address, u64), u64> = Map::new("history");

fn check_entry_name(name: &str) -> Result<()> {
    ensure!(
        !name.is_empty() && name.len() <= MAX_ENTRY_NAME,
        Error::bad_input("a reserve entry name is 1 to 32 characters")
    );
    Ok(())
}

fn reserves_of(owner: &Address) -> Result<ReserveList> {
    let mut list = RESERVES.get_or_default(owner)?;
    list.owner = owner.to_vec();
    Ok(list)
}

fn save_reserves(owner: &Address, mut list: ReserveList) {
    list.entries.retain(|e| e.amount > 0);
    list.total = list.entries.iter().map(|e| e.amount).sum();
    if list.entries.is_empty() {
        RESERVES.remove(owner);
    } else {
        RESERVES.set(owner, &list);
    }
}

/// An id of the call's place in the chain, not a counter every remit would write: so remits
/// of one block run in parallel (ADR 0020). Ids of earlier code's counter (1, 2, ...) are far
/// below these and stay valid.
#[cfg(not(feature = "v2"))]
fn new_remittance_id() -> Result<u64> {
    Ok(context::new_id())
}

/// Version 2 (the code of the in-place upgrade demonstration) is installed on chains whose
/// protocol version does not offer `new_id` to upgraded code: it counts ids instead, from 1
/// (far below the ids of the genesis code, so none collide).
#[cfg(feature = "v2")]
fn new_remittance_id() -> Result<u64> {
    static NEXT_ID: quorate_sdk::storage::Item<u64> = quorate_sdk::storage::Item::new("next_id");
    let id = NEXT_ID.load()?.unwrap_or(1);
    NEXT_ID.save(&(id + 1));
    Ok(id)
}

fn record_history(account: &Address, id: u64) {
    let n = HISTORY_LEN.get_or_default(account).unwrap_or_default();
    HISTORY.set(&(*account, n), &id);
    HISTORY_LEN.set(account, &(n + 1));
}

methods! {
    /// Adds the tokens sent with the call to the caller's entry.
    fn deposit(args: DepositArgs) -> Result<ReserveChange> {
        check_entry_name(&args.entry)?;
        let amount = context::value();
        ensure!(amount > 0, Error::bad_input("send the amount to deposit as the call's value"));
        let owner = context::caller();
        let mut list = reserves_of(&owner)?;
        let balance = match list.entries.iter_mut().find(|e| e.name == args.entry) {
            Some(e) => {
                e.amount = e
                    .amount
                    .checked_add(amount)
                    .ok_or_else(|| Error::new("reserve entry overflow"))?;
                e.amount
            }
            None => {
                ensure!(
                    list.entries.len() < MAX_ENTRIES,
                    Error::new("a reserve fund list holds at most 16 entries")
                );
                list.entries.push(ReserveEntry { name: args.entry.clone(), amount });
                amount
            }
        };
        save_reserves(&owner, list);
        let change = ReserveChange { owner: owner.to_vec(), entry: args.entry, amount, balance };
        events::emit("deposited", &change);
        Ok(change)
    }

    /// Pays `amount` from the caller's entry back to the caller.
    fn withdraw(args: WithdrawArgs) -> Result<ReserveChange> {
        check_entry_name(&args.entry)?;
        ensure!(args.amount > 0, Error::bad_input("amount must be positive"));
        let owner = context::caller();
        let mut list = reserves_of(&owner)?;
        let entry = list
            .entries
            .iter_mut()
            .find(|e| e.name == args.entry)
            .ok_or_else(|| Error::new(quorate_sdk::__format!("no reserve entry {:?}", args.entry)))?;
        ensure!(
            entry.amount >= args.amount,
            Error::new(quorate_sdk::__format!(
                "reserve entry {:?} holds {}; {} asked",
                args.entry, entry.amount, args.amount
            ))
        );
        entry.amount -= args.amount;
        let balance = entry.amount;
        save_reserves(&owner, list);
        context::transfer(&owner, args.amount)?;
        let change = ReserveChange { owner: owner.to_vec(), entry: args.entry, amount: args.amount, balance };
        events::emit("withdrawn", &change);
        Ok(change)
    }

    /// Pays `amount` to the remittee from the caller's reserves, if the allocations cover it.
    fn remit(args: RemitArgs) -> Result<Remittance> {
        let remitter = context::caller();
        let remittee = Address::from_slice(&args.remittee)?;
        ensure!(args.amount > 0, Error::bad_input("amount must be positive"));
        ensure!(remittee != remitter, Error::bad_input("remitter and remittee are the same account"));
        ensure!(
            !args.allocations.is_empty() && args.allocations.len() <= MAX_ALLOCATIONS,
            Error::bad_input("a remittance allocates from 1 to 16 reserve entries")
        );
        ensure!(args.memo.len() <= MAX_MEMO, Error::bad_input("memo is at most 256 bytes"));
        let mut list = reserves_of(&remitter)?;
        let mut allocated: u64 = 0;
        for (i, a) in args.allocations.iter().enumerate() {
            check_entry_name(&a.entry)?;
            ensure!(a.amount > 0, Error::bad_input("every allocated amount must be positive"));
            ensure!(
                !args.allocations[..i].iter().any(|b| b.entry == a.entry),
                Error::bad_input(quorate_sdk::__format!("entry {:?} is allocated twice", a.entry))
            );
            let held = list.entries.iter().find(|e| e.name == a.entry).map_or(0, |e| e.amount);
            ensure!(
                held >= a.amount,
                Error::new(quorate_sdk::__format!(
                    "reserve entry {:?} holds {held}; {} allocated from it",
                    a.entry, a.amount
                ))
            );
            allocated = allocated.saturating_add(a.amount);
        }
        // The seed's verification: the reserved amounts must cover the remittance amount.
        ensure!(
            allocated >= args.amount,
            Error::new(quorate_sdk::__format!(
                "allocated reserves {allocated} do not cover the remittance amount {}",
                args.amount
            ))
        );
        let mut left = args.amount;
        let mut charged = Vec::new();
        for a in &args.allocations {
            if left == 0 {
                break;
            }
            let take = a.amount.min(left);
            let entry = list.entries.iter_mut().find(|e| e.name == a.entry).expect("checked above");
            entry.amount -= take;
            left -= take;
            charged.push(Allocation { entry: a.entry.clone(), amount: take });
        }
        save_reserves(&remitter, list);
        context::transfer(&remittee, args.amount)?;
        let id = new_remittance_id()?;
        let r = Remittance {
            id,
            remitter: remitter.to_vec(),
            remittee: remittee.to_vec(),
            amount: args.amount,
            allocations: args.allocations,
            charged,
            memo: args.memo,
            height: context::block_height(),
            time_ms: context::block_time_ms(),
        };
        REMITTANCES.set(&id, &r);
        record_history(&remitter, id);
        record_history(&remittee, id);
        events::emit("remitted", &r);
        Ok(r)
    }

    /// An account's reserve fund list.
    fn reserves(args: ReservesArgs) -> Result<ReserveList> {
        reserves_of(&Address::from_slice(&args.owner)?)
    }

    /// A remittance by id.
    fn remittance(args: RemittanceArgs) -> Result<Remittance> {
        REMITTANCES
            .get(&args.id)?
            .ok_or_else(|| Error::bad_input(quorate_sdk::__format!("no remittance {}", args.id)))
    }

    /// Remittances an account sent or received, oldest first.
    fn history(args: HistoryArgs) -> Result<RemittanceList> {
        let account = Address::from_slice(&args.account)?;
        let total = HISTORY_LEN.get_or_default(&account)?;
        let limit = match args.limit { 0 => 50, l => l.min(200) } as u64;
        let mut remittances = Vec::new();
        let mut i = u64::from(args.offset);
        while i < total && (remittances.len() as u64) < limit {
            if let Some(id) = HISTORY.get(&(account, i))? {
                remittances.extend(REMITTANCES.get(&id)?);
            }
            i += 1;
        }
        Ok(RemittanceList { remittances, total })
    }
}

/// Version 2's method (feature `v2`): moving reserved tokens between two entries of the
/// caller's list. It reads and writes the lists version 1 stored, as they are.
#[cfg(feature = "v2")]
pub mod v2 {
    use super::*;

    /// Messages of `proto/quorate/contracts/v2/remittance.proto`.
    pub mod pb {
        include!(concat!(
            env!("OUT_DIR"),
            "/quorate.contracts.remittance.v2.rs"
        ));
    }
    use pb::{MoveArgs, ReserveMove};

    methods! {
        /// Moves `amount` from the caller's entry `from` to its entry `to`.
        fn move_reserve(args: MoveArgs) -> Result<ReserveList> {
            check_entry_name(&args.from)?;
            check_entry_name(&args.to)?;
            ensure!(args.from != args.to, Error::bad_input("move between two different entries"));
            ensure!(args.amount > 0, Error::bad_input("amount must be positive"));
            let owner = context::caller();
            let mut list = reserves_of(&owner)?;
            let from = list
                .entries
                .iter_mut()
                .find(|e| e.name == args.from)
                .ok_or_else(|| Error::new(quorate_sdk::__format!("no reserve entry {:?}", args.from)))?;
            ensure!(
                from.amount >= args.amount,
                Error::new(quorate_sdk::__format!(
                    "entry {:?} holds {}; cannot move {}",
                    args.from,
                    from.amount,
                    args.amount
                ))
            );
            from.amount -= args.amount;
            let from_balance = from.amount;
            let to_balance = match list.entries.iter_mut().find(|e| e.name == args.to) {
                Some(e) => {
                    e.amount = e
                        .amount
                        .checked_add(args.amount)
                        .ok_or_else(|| Error::new("reserve entry overflow"))?;
                    e.amount
                }
                None => {
                    // The emptied `from` entry goes when the list is saved, making room.
                    let live = list.entries.iter().filter(|e| e.amount > 0).count();
                    ensure!(
                        live < MAX_ENTRIES,
                        Error::new("a reserve fund list holds at most 16 entries")
                    );
                    list.entries.push(ReserveEntry { name: args.to.clone(), amount: args.amount });
                    args.amount
                }
            };
            save_reserves(&owner, list);
            events::emit(
                "moved",
                &ReserveMove {
                    owner: owner.to_vec(),
                    from: args.from,
                    to: args.to,
                    amount: args.amount,
                    from_balance,
                    to_balance,
                },
            );
            reserves_of(&owner)
        }
    }
}

/// The entry names of a list (for tests and clients).
pub fn entry_names(list: &ReserveList) -> Vec<String> {
    list.entries.iter().map(|e| e.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_sdk::testing;

    const ALICE: Address = Address([1; 20]);
    const BOB: Address = Address([2; 20]);
    const CONTRACT: Address = Address([9; 20]);

    fn setup() {
        testing::reset();
        testing::set_self_address(CONTRACT);
        testing::set_caller(ALICE);
    }

    fn fund(entry: &str, amount: u64) {
        // The node credits the value to the contract before the method runs.
        testing::set_balance(CONTRACT, testing::balance_of(CONTRACT) + amount);
        testing::set_value(amount);
        deposit(DepositArgs {
            entry: entry.into(),
        })
        .expect("deposit");
        testing::set_value(0);
    }

    fn alloc(entry: &str, amount: u64) -> Allocation {
        Allocation {
            entry: entry.into(),
            amount,
        }
    }

    #[test]
    fn covered_remittance_pays_and_charges_in_allocation_order() {
        setup();
        fund("payroll", 100);
        fund("ops", 50);
        let r = remit(RemitArgs {
            remittee: BOB.to_vec(),
            amount: 120,
            allocations: vec![alloc("payroll", 90), alloc("ops", 40)],
            memo: "invoice 7".into(),
        })
        .expect("remit");
        assert_eq!(r.charged, vec![alloc("payroll", 90), alloc("ops", 30)]);
        assert_eq!(testing::balance_of(BOB), 120);
        let list = reserves(ReservesArgs {
            owner: ALICE.to_vec(),
        })
        .expect("list");
        assert_eq!(list.total, 30);
        assert_eq!(entry_names(&list), vec!["payroll", "ops"]);
        let h = history(HistoryArgs {
            account: BOB.to_vec(),
            offset: 0,
            limit: 0,
        })
        .expect("history");
        assert_eq!(h.total, 1);
    }

    #[cfg(not(feature = "v2"))]
    #[test]
    fn a_remittance_id_is_its_place_in_the_chain() {
        setup();
        fund("payroll", 100);
        let pay = |to: Address| {
            remit(RemitArgs {
                remittee: to.to_vec(),
                amount: 10,
                allocations: vec![alloc("payroll", 10)],
                memo: String::new(),
            })
            .expect("remit")
            .id
        };
        testing::set_block(5, 1);
        testing::set_tx_index(3);
        let first = pay(BOB);
        assert_eq!(first, (5 << 28) | (3 << 8));
        let again = pay(BOB);
        assert_eq!(
            again,
            first + 1,
            "a second remit of one transaction (a contract's)"
        );
        testing::set_tx_index(4);
        let second = pay(BOB);
        assert!(second > again, "ids follow the chain's order");
        let h = history(HistoryArgs {
            account: BOB.to_vec(),
            offset: 0,
            limit: 0,
        })
        .expect("history");
        let ids: Vec<u64> = h.remittances.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![first, again, second]);
        let shown = remittance(RemittanceArgs { id: second }).expect("by id");
        assert_eq!(shown.amount, 10);
    }

    /// Version 2's method on a list version 1 stored.
    #[cfg(feature = "v2")]
    #[test]
    fn version_two_moves_between_entries_of_a_list_version_one_stored() {
        use super::v2::{move_reserve, pb::MoveArgs};
        setup();
        fund("payroll", 100);
        let mv = |from: &str, to: &str, amount| {
            move_reserve(MoveArgs {
                from: from.into(),
                to: to.into(),
                amount,
            })
        };
        let list = mv("payroll", "travel", 40).expect("move");
        assert_eq!(entry_names(&list), vec!["payroll", "travel"]);
        assert_eq!(list.total, 100, "nothing leaves the contract");
        assert_eq!(list.entries[1].amount, 40);
        assert!(
            mv("payroll", "travel", 61).is_err(),
            "more than the entry holds"
        );
        assert!(mv("payroll", "payroll", 1).is_err());
        assert!(mv("nothing", "travel", 1).is_err());
        // Emptying an entry removes it.
        let list = mv("payroll", "travel", 60).expect("move");
        assert_eq!(entry_names(&list), vec!["travel"]);
        assert_eq!(testing::balance_of(BOB), 0);
    }

    #[test]
    fn uncovered_or_overdrawn_allocations_are_refused() {
        setup();
        fund("payroll", 100);
        let short = remit(RemitArgs {
            remittee: BOB.to_vec(),
            amount: 120,
            allocations: vec![alloc("payroll", 100)],
            memo: String::new(),
        });
        assert!(short.expect_err("refused").message.contains("do not cover"));
        let overdrawn = remit(RemitArgs {
            remittee: BOB.to_vec(),
            amount: 50,
            allocations: vec![alloc("payroll", 150)],
            memo: String::new(),
        });
        assert!(overdrawn
            .expect_err("refused")
            .message
            .contains("holds 100"));
        assert_eq!(testing::balance_of(BOB), 0);
    }
}
