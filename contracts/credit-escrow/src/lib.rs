//! The credit-certificate escrow system contract. A credit rights certificate is a right to an
//! amount its issuer owes at maturity, held by an account. Its holder (the debtor of a
//! transfer) asks to transfer it to a creditor: the contract derives a temporary target address
//! from the two addresses and moves the certificate there; the creditor's confirmation moves it
//! on to the creditor. The target is controlled by both, 2 of 2: the certificate returns to the
//! debtor when both approve, or when the debtor reclaims it after the transfer's deadline.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;

use quorate_sdk::storage::{Item, Map};
use quorate_sdk::{context, crypto, ensure, events, methods, Address, Error, Result};

/// Messages of `proto/proto/quorate/contracts/v1/credit_escrow.proto`.
pub mod pb {
    include!(concat!(
        env!("OUT_DIR"),
        "/quorate.contracts.credit_escrow.v1.rs"
    ));
}
use pb::{
    CertificateId, CertificateState, CreditCertificate, HistoryEntry, IssueArgs, TargetAddress,
    TargetArgs, TransferArgs,
};

quorate_sdk::interface!(concat!(env!("OUT_DIR"), "/interface.bin"));

/// Longest terms text.
const MAX_TERMS: usize = 512;

static CERTIFICATES: Map<u64, CreditCertificate> = Map::new("certificate");
static NEXT_ID: Item<u64> = Item::new("next_id");
static HISTORY: Map<(u64, u32), HistoryEntry> = Map::new("history");

/// The temporary target address of a transfer from `debtor` to `creditor`: no key controls it;
/// only this contract moves what it holds, on the rules above.
pub fn target_of(debtor: &Address, creditor: &Address) -> Address {
    crypto::derive_address("quorate/credit-escrow/target", &[&debtor.0, &creditor.0])
}

fn load(id: u64) -> Result<CreditCertificate> {
    CERTIFICATES
        .get(&id)?
        .ok_or_else(|| Error::bad_input(quorate_sdk::__format!("no credit certificate {id}")))
}

fn addr(bytes: &[u8]) -> Address {
    Address::from_slice(bytes).unwrap_or_default()
}

/// Records a step of the certificate's life and stores the certificate (without its history,
/// which is kept entry by entry). The certificate returned (and emitted) carries only this step.
fn save(mut c: CreditCertificate, action: &str, from: &[u8], to: &[u8]) -> CreditCertificate {
    let entry = HistoryEntry {
        action: action.into(),
        by: context::caller().to_vec(),
        from: from.to_vec(),
        to: to.to_vec(),
        height: context::block_height(),
        time_ms: context::block_time_ms(),
    };
    HISTORY.set(&(c.id, c.history_len), &entry);
    c.history_len += 1;
    c.history.clear();
    CERTIFICATES.set(&c.id, &c);
    c.history.push(entry);
    c
}

/// A certificate with its whole history.
fn with_history(mut c: CreditCertificate) -> Result<CreditCertificate> {
    for i in 0..c.history_len {
        c.history.extend(HISTORY.get(&(c.id, i))?);
    }
    Ok(c)
}

/// Back to the debtor: ends the escrow.
fn return_to_debtor(mut c: CreditCertificate, action: &str) -> CreditCertificate {
    let target = c.escrow_target.clone();
    let debtor = core::mem::take(&mut c.escrow_debtor);
    c.holder = debtor.clone();
    c.state = CertificateState::Held as i32;
    c.escrow_creditor.clear();
    c.escrow_target.clear();
    c.escrow_deadline_ms = 0;
    c.debtor_approved_return = false;
    c.creditor_approved_return = false;
    save(c, action, &target, &debtor)
}

fn in_escrow(c: &CreditCertificate) -> Result<()> {
    ensure!(
        c.state == CertificateState::InEscrow as i32,
        Error::new(quorate_sdk::__format!(
            "certificate {} is not in escrow",
            c.id
        ))
    );
    Ok(())
}

methods! {
    /// Issues a certificate owed by the caller and held by `holder`.
    fn issue(args: IssueArgs) -> Result<CreditCertificate> {
        let holder = Address::from_slice(&args.holder)?;
        ensure!(args.amount > 0, Error::bad_input("amount must be positive"));
        ensure!(args.terms.len() <= MAX_TERMS, Error::bad_input("terms are at most 512 bytes"));
        ensure!(
            args.maturity_ms > context::block_time_ms(),
            Error::bad_input("maturity must be after the current block time")
        );
        let id = NEXT_ID.load()?.unwrap_or(1);
        NEXT_ID.save(&(id + 1));
        let issuer = context::caller();
        let c = CreditCertificate {
            id,
            issuer: issuer.to_vec(),
            holder: holder.to_vec(),
            amount: args.amount,
            maturity_ms: args.maturity_ms,
            terms: args.terms,
            state: CertificateState::Held as i32,
            ..CreditCertificate::default()
        };
        let c = save(c, "issued", &issuer.0, &holder.0);
        events::emit("issued", &c);
        Ok(c)
    }

    /// The holder asks to transfer the certificate to `creditor`: it moves to the target.
    fn request_transfer(args: TransferArgs) -> Result<CreditCertificate> {
        let mut c = load(args.id)?;
        let debtor = context::caller();
        let creditor = Address::from_slice(&args.creditor)?;
        ensure!(
            c.state == CertificateState::Held as i32,
            Error::new(quorate_sdk::__format!("certificate {} is already in escrow", c.id))
        );
        ensure!(
            c.holder == debtor.to_vec(),
            Error::permission_denied("only the certificate's holder may transfer it")
        );
        ensure!(creditor != debtor, Error::bad_input("debtor and creditor are the same account"));
        ensure!(
            args.deadline_ms > context::block_time_ms(),
            Error::bad_input("the deadline must be after the current block time")
        );
        let target = target_of(&debtor, &creditor);
        c.holder = target.to_vec();
        c.state = CertificateState::InEscrow as i32;
        c.escrow_debtor = debtor.to_vec();
        c.escrow_creditor = creditor.to_vec();
        c.escrow_target = target.to_vec();
        c.escrow_deadline_ms = args.deadline_ms;
        let c = save(c, "escrowed", &debtor.0, &target.0);
        events::emit("escrowed", &c);
        Ok(c)
    }

    /// The creditor confirms: the certificate moves from the target to the creditor.
    fn confirm(args: CertificateId) -> Result<CreditCertificate> {
        let mut c = load(args.id)?;
        in_escrow(&c)?;
        ensure!(
            context::caller().to_vec() == c.escrow_creditor,
            Error::permission_denied("only the transfer's creditor may confirm it")
        );
        let target = core::mem::take(&mut c.escrow_target);
        let creditor = core::mem::take(&mut c.escrow_creditor);
        c.holder = creditor.clone();
        c.state = CertificateState::Held as i32;
        c.escrow_debtor.clear();
        c.escrow_deadline_ms = 0;
        c.debtor_approved_return = false;
        c.creditor_approved_return = false;
        let c = save(c, "confirmed", &target, &creditor);
        events::emit("confirmed", &c);
        Ok(c)
    }

    /// Debtor or creditor approves returning the certificate; with both, it returns.
    fn approve_return(args: CertificateId) -> Result<CreditCertificate> {
        let mut c = load(args.id)?;
        in_escrow(&c)?;
        let caller = context::caller().to_vec();
        if caller == c.escrow_debtor {
            c.debtor_approved_return = true;
        } else if caller == c.escrow_creditor {
            c.creditor_approved_return = true;
        } else {
            return Err(Error::permission_denied(
                "only the transfer's debtor and creditor may approve a return",
            ));
        }
        if c.debtor_approved_return && c.creditor_approved_return {
            let c = return_to_debtor(c, "returned");
            events::emit("returned", &c);
            return Ok(c);
        }
        let target = c.escrow_target.clone();
        let c = save(c, "return_approved", &target, &target);
        events::emit("return_approved", &c);
        Ok(c)
    }

    /// The debtor takes the certificate back after the deadline passed unconfirmed.
    fn reclaim(args: CertificateId) -> Result<CreditCertificate> {
        let c = load(args.id)?;
        in_escrow(&c)?;
        ensure!(
            context::caller().to_vec() == c.escrow_debtor,
            Error::permission_denied("only the transfer's debtor may reclaim it")
        );
        ensure!(
            context::block_time_ms() >= c.escrow_deadline_ms,
            Error::new(quorate_sdk::__format!(
                "the transfer's deadline {} has not passed (block time {})",
                c.escrow_deadline_ms,
                context::block_time_ms()
            ))
        );
        let c = return_to_debtor(c, "reclaimed");
        events::emit("returned", &c);
        Ok(c)
    }

    /// A certificate with its state and whole history.
    fn get(args: CertificateId) -> Result<CreditCertificate> {
        with_history(load(args.id)?)
    }

    /// The target address of a transfer from `debtor` to `creditor`.
    fn target_address(args: TargetArgs) -> Result<TargetAddress> {
        let debtor = Address::from_slice(&args.debtor)?;
        let creditor = Address::from_slice(&args.creditor)?;
        Ok(TargetAddress { address: target_of(&debtor, &creditor).to_vec() })
    }
}

/// The holder as an address (for clients and tests).
pub fn holder(c: &CreditCertificate) -> Address {
    addr(&c.holder)
}

/// A certificate's history as `action` names (for clients and tests).
pub fn actions(c: &CreditCertificate) -> alloc::vec::Vec<String> {
    c.history.iter().map(|h| h.action.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_sdk::{testing, ErrorKind};

    const ISSUER: Address = Address([1; 20]);
    const DEBTOR: Address = Address([2; 20]);
    const CREDITOR: Address = Address([3; 20]);

    fn issued() -> u64 {
        testing::reset();
        testing::set_block(5, 1_000);
        testing::set_caller(ISSUER);
        let c = issue(IssueArgs {
            holder: DEBTOR.to_vec(),
            amount: 500,
            maturity_ms: 90_000,
            terms: "net 90".into(),
        })
        .expect("issue");
        testing::set_caller(DEBTOR);
        request_transfer(TransferArgs {
            id: c.id,
            creditor: CREDITOR.to_vec(),
            deadline_ms: 5_000,
        })
        .expect("transfer");
        c.id
    }

    #[test]
    fn escrow_then_creditor_confirmation() {
        let id = issued();
        let c = get(CertificateId { id }).expect("get");
        assert_eq!(holder(&c), target_of(&DEBTOR, &CREDITOR));
        testing::set_caller(DEBTOR);
        assert_eq!(
            confirm(CertificateId { id }).expect_err("debtor").kind,
            ErrorKind::PermissionDenied
        );
        testing::set_caller(CREDITOR);
        let c = confirm(CertificateId { id }).expect("confirm");
        assert_eq!(holder(&c), CREDITOR);
        assert_eq!(
            actions(&c),
            vec!["confirmed"],
            "a call returns the step it took"
        );
        let c = get(CertificateId { id }).expect("get");
        assert_eq!(actions(&c), vec!["issued", "escrowed", "confirmed"]);
        assert_eq!(c.history_len, 3);
    }

    #[test]
    fn return_needs_both_or_the_deadline() {
        let id = issued();
        testing::set_caller(DEBTOR);
        let c = approve_return(CertificateId { id }).expect("approve");
        assert_eq!(c.state, CertificateState::InEscrow as i32);
        assert!(
            reclaim(CertificateId { id }).is_err(),
            "deadline not passed"
        );
        testing::set_caller(CREDITOR);
        let c = approve_return(CertificateId { id }).expect("approve");
        assert_eq!(holder(&c), DEBTOR);

        let id = issued();
        testing::set_block(9, 6_000);
        testing::set_caller(DEBTOR);
        let c = reclaim(CertificateId { id }).expect("reclaim");
        assert_eq!(holder(&c), DEBTOR);
        assert_eq!(actions(&c).last().map(String::as_str), Some("reclaimed"));
    }
}
