//! The four system contracts' methods, typed: each constant names a contract, a method and the
//! protobuf messages of its arguments and result, generated from the same `.proto` files the
//! contracts embed as their interface (`GetContract` gives it; the tests check every constant
//! against it). A method makes the payload of a call, runs as a read-only query, or decodes a
//! committed call's result.
//!
//! ```no_run
//! # async fn demo(node: &quorate_client::Node) -> Result<(), quorate_client::ClientError> {
//! use quorate_client::system::remittance::{self, ReservesArgs};
//! let reserves = remittance::RESERVES.query(node, &ReservesArgs::default()).await?;
//! # Ok(()) }
//! ```

use std::marker::PhantomData;

use bytes::Bytes;
use prost::Message;
use quorate_proto::crypto::Address;
use quorate_proto::v1::{tx_body::Payload, Call, Receipt};

use crate::error::ClientError;
use crate::node::Node;

/// A method of a system contract taking `A` and returning `R`.
#[derive(Debug)]
pub struct Method<A, R> {
    /// The contract's name (`Address::of_system_contract` of it is its address).
    pub contract: &'static str,
    /// The method's name.
    pub name: &'static str,
    /// Full protobuf name of the arguments' message.
    pub args_type: &'static str,
    /// Full protobuf name of the result's message.
    pub result_type: &'static str,
    types: PhantomData<fn(A) -> R>,
}

impl<A, R> Clone for Method<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for Method<A, R> {}

impl<A: Message, R: Message + Default> Method<A, R> {
    const fn new(
        contract: &'static str,
        name: &'static str,
        args_type: &'static str,
        result_type: &'static str,
    ) -> Self {
        Self {
            contract,
            name,
            args_type,
            result_type,
            types: PhantomData,
        }
    }

    /// The contract's address.
    pub fn address(&self) -> Address {
        Address::of_system_contract(self.contract)
    }

    /// The payload of a transaction calling this method with `args`, moving `value` native
    /// tokens to the contract (0 for every method but a deposit).
    pub fn call(&self, args: &A, value: u64) -> Payload {
        Payload::Call(Call {
            contract: Bytes::copy_from_slice(&self.address().0),
            method: self.name.to_owned(),
            args: args.encode_to_vec().into(),
            value,
        })
    }

    /// Runs the method read-only against the node's latest committed state.
    pub async fn query(&self, node: &Node, args: &A) -> Result<R, ClientError> {
        let bytes = node
            .query(&self.address(), self.name, args.encode_to_vec())
            .await?;
        self.decode(&bytes)
    }

    /// What a committed call of this method returned.
    pub fn result(&self, receipt: &Receipt) -> Result<R, ClientError> {
        self.decode(&receipt.return_data)
    }

    fn decode(&self, bytes: &[u8]) -> Result<R, ClientError> {
        R::decode(bytes).map_err(|e| ClientError::BadAnswer {
            what: "contract result",
            why: format!(
                "{}.{} returned bytes that are not a {}: {e}",
                self.contract, self.name, self.result_type
            ),
        })
    }
}

/// Declares a contract's methods as [`Method`] constants.
macro_rules! methods {
    ($contract:literal, $package:literal;
     $( $(#[$doc:meta])* $constant:ident = $name:literal ($args:ident) -> $result:ident; )*) => {
        /// The contract's name.
        pub const NAME: &str = $contract;
        $(
            $(#[$doc])*
            pub const $constant: Method<$args, $result> = Method::new(
                $contract,
                $name,
                concat!($package, ".", stringify!($args)),
                concat!($package, ".", stringify!($result)),
            );
        )*
        /// Every method: contract, name, argument and result types.
        pub const ALL: &[(&str, &str, &str, &str)] = &[
            $( ($contract, $name, concat!($package, ".", stringify!($args)),
                concat!($package, ".", stringify!($result))), )*
        ];
    };
}

/// Remittance: reserves deposited by remitters, remittances between them.
pub mod remittance {
    use super::Method;
    pub use quorate_proto::contracts::remittance::*;

    methods! {
        "remittance", "quorate.contracts.remittance.v1";
        /// Deposits the call's value into the signer's reserve of a currency.
        DEPOSIT = "deposit"(DepositArgs) -> ReserveChange;
        /// Withdraws from the signer's reserve.
        WITHDRAW = "withdraw"(WithdrawArgs) -> ReserveChange;
        /// Sends a remittance from the signer's reserve.
        REMIT = "remit"(RemitArgs) -> Remittance;
        /// A remitter's reserves (read-only).
        RESERVES = "reserves"(ReservesArgs) -> ReserveList;
        /// One remittance (read-only).
        REMITTANCE = "remittance"(RemittanceArgs) -> Remittance;
        /// A remitter's remittances (read-only).
        HISTORY = "history"(HistoryArgs) -> RemittanceList;
    }
}

/// Credit-certificate escrow: certificates issued by a debtor, transferred with the
/// creditor's confirmation.
pub mod credit_escrow {
    use super::Method;
    pub use quorate_proto::contracts::credit_escrow::*;

    methods! {
        "credit-escrow", "quorate.contracts.credit_escrow.v1";
        /// Issues a credit certificate.
        ISSUE = "issue"(IssueArgs) -> CreditCertificate;
        /// Asks for a certificate's transfer (into escrow).
        REQUEST_TRANSFER = "request_transfer"(TransferArgs) -> CreditCertificate;
        /// Confirms a transfer in escrow.
        CONFIRM = "confirm"(CertificateId) -> CreditCertificate;
        /// Returns a certificate in escrow to its debtor.
        RETURN_TO_DEBTOR = "return_to_debtor"(CertificateId) -> CreditCertificate;
        /// Reclaims a certificate whose escrow expired.
        RECLAIM = "reclaim"(CertificateId) -> CreditCertificate;
        /// One certificate (read-only).
        GET = "get"(CertificateId) -> CreditCertificate;
        /// The address a transfer's target derives to (read-only).
        TARGET_ADDRESS = "target_address"(TargetArgs) -> TargetAddress;
    }
}

/// Certificate issuance: authorities, specifications, certificates issued in batches,
/// revocations and presentations.
pub mod certificates {
    use super::Method;
    pub use quorate_proto::contracts::certificates::*;

    methods! {
        "certificates", "quorate.contracts.certificates.v1";
        /// Sets the contract's first admin and authorities.
        INIT = "init"(InitArgs) -> Authorities;
        /// Adds an authority (admin).
        ADD_AUTHORITY = "add_authority"(AuthorityArgs) -> Authorities;
        /// Removes an authority (admin).
        REMOVE_AUTHORITY = "remove_authority"(AuthorityArgs) -> Authorities;
        /// Hands the admin role on (admin).
        SET_ADMIN = "set_admin"(AdminArgs) -> Authorities;
        /// The admin and authorities (read-only).
        AUTHORITIES = "authorities"(Empty) -> Authorities;
        /// Creates a certificate specification (authority).
        CREATE_SPEC = "create_spec"(CreateSpecArgs) -> Spec;
        /// One specification (read-only).
        SPEC = "spec"(SpecId) -> Spec;
        /// Issues certificates of a specification (authority).
        ISSUE_BATCH = "issue_batch"(IssueBatchArgs) -> IssuedBatch;
        /// Revokes a certificate (its issuer).
        REVOKE = "revoke"(RevokeArgs) -> Certificate;
        /// A certificate's validity: VALID, REVOKED, EXPIRED (read-only).
        VERIFY = "verify"(CertificateId) -> Verification;
        /// A certificate presented by its holder.
        PRESENT = "present"(PresentArgs) -> Presentation;
    }
}

/// Device control permissions: devices, their controllers, grants and their history.
pub mod device_permissions {
    use super::Method;
    pub use quorate_proto::contracts::device_permissions::*;

    methods! {
        "device-permissions", "quorate.contracts.device_permissions.v1";
        /// Registers a device (its owner is the signer).
        REGISTER = "register"(RegisterArgs) -> Device;
        /// Adds a controller to a device (owner).
        ADD_CONTROLLER = "add_controller"(ControllerArgs) -> Device;
        /// Removes a controller (owner).
        REMOVE_CONTROLLER = "remove_controller"(ControllerArgs) -> Device;
        /// Grants a permission on a device (controller).
        GRANT = "grant"(GrantArgs) -> Grant;
        /// Revokes a grant (controller).
        REVOKE = "revoke"(RevokeArgs) -> Grant;
        /// Whether an account may act on a device now (read-only).
        CHECK = "check"(CheckArgs) -> CheckResult;
        /// One device (read-only).
        DEVICE = "device"(DeviceArgs) -> Device;
        /// A device's history (read-only).
        HISTORY = "history"(HistoryArgs) -> History;
    }
}

/// Every system contract method: (contract, method, argument type, result type).
pub fn all_methods(
) -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str, &'static str)> {
    remittance::ALL
        .iter()
        .chain(credit_escrow::ALL)
        .chain(certificates::ALL)
        .chain(device_permissions::ALL)
}
