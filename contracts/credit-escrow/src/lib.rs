//! The credit-certificate escrow system contract. A credit rights certificate is a right to an
//! amount its issuer owes at maturity, held by an account. Its holder (the debtor of a
//! transfer) asks to transfer it to a creditor: the contract moves the certificate to a
//! temporary target address — the 2-of-2 multi-signature address of the debtor's and the
//! creditor's keys — and the creditor's confirmation moves it on to the creditor. The certificate
//! returns to the debtor by one transaction from the target address, which both keys sign, or
//! when the debtor reclaims it after the transfer's deadline.
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

/// The temporary target address of a transfer between the holders of `debtor_key` and
/// `creditor_key`: their 2-of-2 multi-signature address (weight 1 each, every threshold 2), which
/// only a transaction both keys sign acts for.
pub fn target_of(debtor_key: &[u8; 32], creditor_key: &[u8; 32]) -> Address {
    crypto::multisig_address(&[(*debtor_key, 1), (*creditor_key, 1)], 2, 2)
}

/// A 32-byte public key argument.
fn public_key(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| {
        Error::bad_input(quorate_sdk::__format!(
            "{what} is {} bytes; an ed25519 public key is 32",
            bytes.len()
        ))
    })
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
fn back_to_debtor(mut c: CreditCertificate, action: &str) -> CreditCertificate {
    let target = c.escrow_target.clone();
    let debtor = core::mem::take(&mut c.escrow_debtor);
    c.holder = debtor.clone();
    c.state = CertificateState::Held as i32;
    c.escrow_creditor.clear();
    c.escrow_target.clear();
    c.escrow_deadline_ms = 0;
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
        let debtor_key = public_key(&args.debtor_key, "debtor_key")?;
        let creditor_key = public_key(&args.creditor_key, "creditor_key")?;
        // Each key must be one that alone can act for its party's account: the account's
        // own key, or a key of its key set whose weight reaches a call's threshold (a rotated
        // key, or a key of a multi-key account trusted alone); not merely the key its address
        // was derived from (issue 25: a party whose key rotated could not use the escrow).
        ensure!(
            crypto::key_acts_for(&debtor, &debtor_key),
            Error::bad_input(
                "debtor_key cannot act alone for the caller's account (its weight is below the account's contract-call threshold, or it is not one of its keys)"
            )
        );
        ensure!(
            crypto::key_acts_for(&creditor, &creditor_key),
            Error::bad_input(
                "creditor_key cannot act alone for the creditor's account (its weight is below the account's contract-call threshold, or it is not one of its keys)"
            )
        );
        let target = target_of(&debtor_key, &creditor_key);
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
        let c = save(c, "confirmed", &target, &creditor);
        events::emit("confirmed", &c);
        Ok(c)
    }

    /// The target address — a transaction the debtor's and the creditor's keys both signed —
    /// returns the certificate to the debtor.
    fn return_to_debtor(args: CertificateId) -> Result<CreditCertificate> {
        let c = load(args.id)?;
        in_escrow(&c)?;
        ensure!(
            context::caller().to_vec() == c.escrow_target,
            Error::permission_denied(
                "only the escrow's target address, in a transaction both the debtor and the creditor sign, may return it"
            )
        );
        let c = back_to_debtor(c, "returned");
        events::emit("returned", &c);
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
        let c = back_to_debtor(c, "reclaimed");
        events::emit("returned", &c);
        Ok(c)
    }

    /// A certificate with its state and whole history.
    fn get(args: CertificateId) -> Result<CreditCertificate> {
        with_history(load(args.id)?)
    }

    /// The target address of a transfer between the holders of two keys.
    fn target_address(args: TargetArgs) -> Result<TargetAddress> {
        let debtor_key = public_key(&args.debtor_key, "debtor_key")?;
        let creditor_key = public_key(&args.creditor_key, "creditor_key")?;
        Ok(TargetAddress { address: target_of(&debtor_key, &creditor_key).to_vec() })
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
    const DEBTOR_KEY: [u8; 32] = [2; 32];
    const CREDITOR_KEY: [u8; 32] = [3; 32];

    fn debtor() -> Address {
        crypto::address_of_key(&DEBTOR_KEY)
    }

    fn creditor() -> Address {
        crypto::address_of_key(&CREDITOR_KEY)
    }

    /// A fresh host with a certificate issued to the debtor; its id.
    fn issued_to_debtor() -> u64 {
        testing::reset();
        testing::set_block(5, 1_000);
        testing::set_caller(ISSUER);
        let c = issue(IssueArgs {
            holder: debtor().to_vec(),
            amount: 500,
            maturity_ms: 90_000,
            terms: "net 90".into(),
        })
        .expect("issue");
        c.id
    }

    /// The debtor's transfer of certificate `id` to the creditor, naming `creditor_key`.
    fn transfer_args(id: u64, creditor_key: [u8; 32]) -> TransferArgs {
        TransferArgs {
            id,
            creditor: creditor().to_vec(),
            deadline_ms: 5_000,
            debtor_key: DEBTOR_KEY.to_vec(),
            creditor_key: creditor_key.to_vec(),
        }
    }

    fn issued() -> u64 {
        let id = issued_to_debtor();
        testing::set_caller(debtor());
        let args = |creditor_key| transfer_args(id, creditor_key);
        assert_eq!(
            request_transfer(args([9; 32]))
                .expect_err("a key not the creditor's")
                .kind,
            ErrorKind::BadInput
        );
        request_transfer(args(CREDITOR_KEY)).expect("transfer");
        id
    }

    #[test]
    fn escrow_then_creditor_confirmation() {
        let id = issued();
        let c = get(CertificateId { id }).expect("get");
        assert_eq!(holder(&c), target_of(&DEBTOR_KEY, &CREDITOR_KEY));
        testing::set_caller(debtor());
        assert_eq!(
            confirm(CertificateId { id }).expect_err("debtor").kind,
            ErrorKind::PermissionDenied
        );
        testing::set_caller(creditor());
        let c = confirm(CertificateId { id }).expect("confirm");
        assert_eq!(holder(&c), creditor());
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
    fn return_needs_the_two_of_two_address_or_the_deadline() {
        let id = issued();
        for alone in [debtor(), creditor()] {
            testing::set_caller(alone);
            assert_eq!(
                return_to_debtor(CertificateId { id })
                    .expect_err("one party")
                    .kind,
                ErrorKind::PermissionDenied
            );
        }
        testing::set_caller(debtor());
        assert!(
            reclaim(CertificateId { id }).is_err(),
            "deadline not passed"
        );
        testing::set_caller(target_of(&DEBTOR_KEY, &CREDITOR_KEY));
        let c = return_to_debtor(CertificateId { id }).expect("both signed");
        assert_eq!(holder(&c), debtor());

        let id = issued();
        testing::set_block(9, 6_000);
        testing::set_caller(debtor());
        let c = reclaim(CertificateId { id }).expect("reclaim");
        assert_eq!(holder(&c), debtor());
        assert_eq!(actions(&c).last().map(String::as_str), Some("reclaimed"));
    }

    /// Issue 25 (low): the escrow asked each key to be the one its party's address was derived
    /// from, so a party whose key rotated, or a multi-key account, could not use it. A key that
    /// alone can act for its party's account now stands for it; one that cannot is refused.
    #[test]
    fn a_party_whose_key_rotated_uses_its_current_key() {
        let id = issued_to_debtor();
        // The creditor's account rotated from CREDITOR_KEY to NEW_KEY.
        const NEW_KEY: [u8; 32] = [4; 32];
        testing::set_account_key(creditor(), NEW_KEY);
        testing::set_caller(debtor());
        let args = |creditor_key| transfer_args(id, creditor_key);
        let refused = request_transfer(args(CREDITOR_KEY)).expect_err("the retired key");
        assert_eq!(refused.kind, ErrorKind::BadInput);
        let c = request_transfer(args(NEW_KEY)).expect("the current key");
        assert_eq!(holder(&c), target_of(&DEBTOR_KEY, &NEW_KEY));
    }
}
