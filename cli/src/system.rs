//! `quorate remittance|escrow|certs|device …`: the system contracts deployed at genesis, one
//! subcommand per method. Each builds the method's JSON arguments and calls (or queries) the
//! contract at its fixed address through the interface it embeds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use quorate_genesis::system::{CERTIFICATES, CREDIT_ESCROW, DEVICE_PERMISSIONS, REMITTANCE};
use quorate_genesis::KeyFile;
use quorate_proto::crypto::Address;
use serde_json::{json, Value};

use super::client::runtime;
use super::contract::{call, parse_addr, query};
use super::{ClientOpts, SignOpts};

/// An account on the command line: 40 hex digits, or a key file whose address is meant.
#[derive(Clone, Debug)]
pub struct Account(Address);

impl std::str::FromStr for Account {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        if let Ok(a) = Address::from_hex(s) {
            return Ok(Self(a));
        }
        if Path::new(s).is_file() {
            return Ok(Self(KeyFile::load(Path::new(s))?.address()));
        }
        parse_addr(s)
            .map(Self)
            .context("expected 40 hex digits or a key file")
    }
}

impl Account {
    fn hex(&self) -> String {
        format!("0x{}", self.0.to_hex())
    }
}

/// A public key on the command line: 64 hex digits, or a key file whose public key is meant.
#[derive(Clone, Debug)]
pub struct PublicKeyArg([u8; 32]);

impl std::str::FromStr for PublicKeyArg {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        super::key_sets::public_key(s).map(Self)
    }
}

impl PublicKeyArg {
    fn hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

/// A point in time: a duration from now (`90s`, `2h`, `30d`), an RFC 3339 time, or
/// milliseconds since the Unix epoch.
#[derive(Clone, Debug)]
pub struct When(u64);

impl std::str::FromStr for When {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        if let Ok(ms) = s.parse::<u64>() {
            return Ok(Self(ms));
        }
        if let Ok(t) = humantime::parse_rfc3339_weak(s) {
            return Ok(Self(millis_since_epoch(t)?));
        }
        let d = humantime::parse_duration(s).with_context(|| {
            format!("{s:?} is neither a duration (90s, 2h, 30d), an RFC 3339 time nor epoch ms")
        })?;
        Ok(Self(millis_since_epoch(SystemTime::now() + d)?))
    }
}

fn millis_since_epoch(t: SystemTime) -> anyhow::Result<u64> {
    let d = t.duration_since(UNIX_EPOCH).context("time before 1970")?;
    u64::try_from(d.as_millis()).context("time out of range")
}

fn parse_duration_ms(s: &str) -> anyhow::Result<u64> {
    let d: Duration = humantime::parse_duration(s)
        .with_context(|| format!("{s:?} is not a duration (e.g. 90s, 2h, 365d)"))?;
    u64::try_from(d.as_millis()).context("duration out of range")
}

/// `entry=amount` of a remittance allocation.
fn parse_allocation(s: &str) -> anyhow::Result<(String, u64)> {
    let (entry, amount) = s
        .rsplit_once('=')
        .with_context(|| format!("allocation {s:?} must be ENTRY=AMOUNT"))?;
    let amount = amount
        .parse()
        .with_context(|| format!("allocation {s:?}: amount is not a whole number"))?;
    Ok((entry.to_owned(), amount))
}

/// Data given as text or as hex, to JSON's hex bytes.
fn data_hex(text: Option<String>, hex_data: Option<String>) -> anyhow::Result<String> {
    Ok(match (text, hex_data) {
        (Some(_), Some(_)) => bail!("give the data as text or as hex, not both"),
        (Some(t), None) => format!("0x{}", hex::encode(t)),
        (None, Some(h)) => {
            let h = h.trim_start_matches("0x");
            hex::decode(h).context("data is not hex")?;
            format!("0x{h}")
        }
        (None, None) => String::new(),
    })
}

/// Options of read-only queries.
#[derive(Args, Debug, Clone)]
pub struct QueryOpts {
    /// Address the contract sees as caller.
    #[arg(long)]
    caller: Option<Account>,
    /// Client options.
    #[command(flatten)]
    opts: ClientOpts,
}

/// What a subcommand asks of its contract.
enum Invocation {
    /// A transaction.
    Call {
        method: &'static str,
        args: Value,
        value: u64,
        sign: SignOpts,
    },
    /// A read-only query.
    Query {
        method: &'static str,
        args: Value,
        q: QueryOpts,
    },
}

impl Invocation {
    /// A transaction calling `method` with no tokens attached.
    fn tx(method: &'static str, args: Value, sign: SignOpts) -> Self {
        Self::Call {
            method,
            args,
            value: 0,
            sign,
        }
    }
}

fn run_invocation(contract: &str, inv: Invocation) -> anyhow::Result<ExitCode> {
    let addr = Address::of_system_contract(contract);
    runtime()?.block_on(async move {
        match inv {
            Invocation::Call {
                method,
                args,
                value,
                sign,
            } => call(addr, method, Some(args.to_string()), None, value, sign).await,
            Invocation::Query { method, args, q } => {
                query(
                    addr,
                    method,
                    Some(args.to_string()),
                    None,
                    q.caller.map(|c| c.0),
                    None,
                    &q.opts,
                )
                .await
            }
        }
    })
}

/// `quorate remittance …`
#[derive(Subcommand, Debug)]
pub enum RemittanceCommand {
    /// Move tokens from your account into one of your named reserve entries.
    Deposit {
        /// Reserve entry name (created if new; 1-32 characters; at most 16 entries).
        entry: String,
        /// Tokens to reserve.
        amount: u64,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Take tokens out of a reserve entry back to your account.
    Withdraw {
        /// Reserve entry name.
        entry: String,
        /// Tokens to take out.
        amount: u64,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Remit tokens to a remittee, covered by amounts allocated from your reserve entries.
    Remit {
        /// Remittee (address or key file).
        remittee: Account,
        /// Tokens to remit.
        amount: u64,
        /// Allocation ENTRY=AMOUNT (repeat); together they must cover the amount.
        #[arg(long = "alloc", value_parser = parse_allocation, required = true)]
        allocations: Vec<(String, u64)>,
        /// Memo carried with the remittance.
        #[arg(long, default_value = "")]
        memo: String,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Show an account's reserve fund list.
    Reserves {
        /// Owner (address or key file).
        owner: Account,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
    /// Show one remittance.
    Show {
        /// Remittance id.
        id: u64,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
    /// List remittances an account sent or received, oldest first.
    History {
        /// Account (address or key file).
        account: Account,
        /// Skip this many.
        #[arg(long, default_value_t = 0)]
        offset: u32,
        /// At most this many (up to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
}

/// Runs `quorate remittance …`.
pub fn remittance(cmd: RemittanceCommand) -> anyhow::Result<ExitCode> {
    let inv = match cmd {
        RemittanceCommand::Deposit {
            entry,
            amount,
            sign,
        } => Invocation::Call {
            method: "deposit",
            args: json!({"entry": entry}),
            value: amount,
            sign,
        },
        RemittanceCommand::Withdraw {
            entry,
            amount,
            sign,
        } => Invocation::tx("withdraw", json!({"entry": entry, "amount": amount}), sign),
        RemittanceCommand::Remit {
            remittee,
            amount,
            allocations,
            memo,
            sign,
        } => Invocation::tx(
            "remit",
            json!({
                "remittee": remittee.hex(),
                "amount": amount,
                "allocations": allocations
                    .into_iter()
                    .map(|(entry, amount)| json!({"entry": entry, "amount": amount}))
                    .collect::<Vec<_>>(),
                "memo": memo,
            }),
            sign,
        ),
        RemittanceCommand::Reserves { owner, q } => Invocation::Query {
            method: "reserves",
            args: json!({"owner": owner.hex()}),
            q,
        },
        RemittanceCommand::Show { id, q } => Invocation::Query {
            method: "remittance",
            args: json!({"id": id}),
            q,
        },
        RemittanceCommand::History {
            account,
            offset,
            limit,
            q,
        } => Invocation::Query {
            method: "history",
            args: json!({"account": account.hex(), "offset": offset, "limit": limit}),
            q,
        },
    };
    run_invocation(REMITTANCE, inv)
}

/// `quorate escrow …`
#[derive(Subcommand, Debug)]
pub enum EscrowCommand {
    /// Issue a credit rights certificate: you owe `amount` at maturity to its holder.
    Issue {
        /// First holder (address or key file).
        holder: Account,
        /// Amount owed.
        amount: u64,
        /// Maturity: a duration from now (365d), an RFC 3339 time, or epoch ms.
        #[arg(long)]
        maturity: When,
        /// Terms text (at most 512 bytes).
        #[arg(long, default_value = "")]
        terms: String,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// As the holder (debtor), move a certificate to the escrow address of you and a creditor:
    /// the 2-of-2 multi-signature address of your key (`--from`) and theirs. Each key must be
    /// able to act alone for its account (its own key, or a key of its key set weighing at
    /// least a contract call's threshold).
    Transfer {
        /// Certificate id.
        id: u64,
        /// The creditor's public key (64 hex digits) or key file.
        creditor: PublicKeyArg,
        /// The creditor's account, when it is not the address of its key (its key rotated, or
        /// a multi-key account).
        #[arg(long, value_name = "ADDRESS")]
        creditor_account: Option<String>,
        /// After this (a duration from now, RFC 3339 or epoch ms) you may reclaim it unconfirmed.
        #[arg(long, default_value = "7d")]
        deadline: When,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// As the creditor, confirm a transfer: the certificate moves from escrow to you.
    Confirm {
        /// Certificate id.
        id: u64,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Return an escrowed certificate to the debtor: one transaction from the escrow's 2-of-2
    /// address, signed by both debtor and creditor (`--from` one, `--cosign` the other, or
    /// `--save` it for the other to add a signature with `quorate tx sign`). The escrow address
    /// pays its fee: send it some tokens first.
    Return {
        /// Certificate id.
        id: u64,
        /// The debtor's public key (64 hex digits) or key file.
        #[arg(long)]
        debtor: PublicKeyArg,
        /// The creditor's public key (64 hex digits) or key file.
        #[arg(long)]
        creditor: PublicKeyArg,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// As the debtor, take an unconfirmed certificate back after the transfer's deadline.
    Reclaim {
        /// Certificate id.
        id: u64,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Show a certificate: its state and its whole history.
    Show {
        /// Certificate id.
        id: u64,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
    /// The temporary target (escrow) address of a debtor and a creditor: the 2-of-2
    /// multi-signature address of their keys.
    Target {
        /// The debtor's public key (64 hex digits) or key file.
        debtor: PublicKeyArg,
        /// The creditor's public key (64 hex digits) or key file.
        creditor: PublicKeyArg,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
}

/// Runs `quorate escrow …`.
pub fn escrow(cmd: EscrowCommand) -> anyhow::Result<ExitCode> {
    let id_call = |method, id: u64, sign| Invocation::tx(method, json!({"id": id}), sign);
    let inv = match cmd {
        EscrowCommand::Issue {
            holder,
            amount,
            maturity,
            terms,
            sign,
        } => Invocation::tx(
            "issue",
            json!({"holder": holder.hex(), "amount": amount,
                         "maturity_ms": maturity.0, "terms": terms}),
            sign,
        ),
        EscrowCommand::Transfer {
            id,
            creditor,
            creditor_account,
            deadline,
            sign,
        } => {
            let debtor = KeyFile::load(&sign.from)?.public().0;
            let creditor_account = match creditor_account {
                Some(a) => Address::from_hex(&a)
                    .map_err(|e| anyhow::anyhow!("--creditor-account {a:?}: {e}"))?,
                None => Address::of_public_key(&creditor.0),
            };
            Invocation::tx(
                "request_transfer",
                json!({"id": id, "creditor": format!("0x{}", creditor_account.to_hex()),
                       "deadline_ms": deadline.0, "debtor_key": format!("0x{}", hex::encode(debtor)),
                       "creditor_key": creditor.hex()}),
                sign,
            )
        }
        EscrowCommand::Confirm { id, sign } => id_call("confirm", id, sign),
        EscrowCommand::Return {
            id,
            debtor,
            creditor,
            mut sign,
        } => {
            // Signed for the 2-of-2 address, carrying its key set (registered by its first
            // transaction, ignored after).
            let set = quorate_proto::keyset::of(
                &[(debtor.0, 1), (creditor.0, 1)],
                quorate_proto::v1::Thresholds {
                    base: 2,
                    key_management: 2,
                    ..Default::default()
                },
            );
            sign.multi.for_account = Some(quorate_proto::keyset::address(&set).to_hex());
            sign.multi.key_set_value = Some(set);
            id_call("return_to_debtor", id, sign)
        }
        EscrowCommand::Reclaim { id, sign } => id_call("reclaim", id, sign),
        EscrowCommand::Show { id, q } => Invocation::Query {
            method: "get",
            args: json!({"id": id}),
            q,
        },
        EscrowCommand::Target {
            debtor,
            creditor,
            q,
        } => Invocation::Query {
            method: "target_address",
            args: json!({"debtor_key": debtor.hex(), "creditor_key": creditor.hex()}),
            q,
        },
    };
    run_invocation(CREDIT_ESCROW, inv)
}

/// `quorate certs …`
#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Show the contract's admin and certificate authorities.
    Authorities {
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
    /// Name a certificate authority (the contract's admin only).
    AddAuthority {
        /// Account (address or key file).
        account: Account,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Remove a certificate authority (the contract's admin only).
    RemoveAuthority {
        /// Account (address or key file).
        account: Account,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Hand the contract's admin role on (the admin only).
    SetAdmin {
        /// Account (address or key file).
        account: Account,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Create a certificate specification (authorities only).
    CreateSpec {
        /// Specification name.
        name: String,
        /// What the certificates' data holds (free text or a schema id).
        #[arg(long, default_value = "")]
        schema: String,
        /// How long a certificate stays valid after issuance (e.g. 365d, 90s).
        #[arg(long, value_parser = parse_duration_ms)]
        validity: u64,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Show a certificate specification.
    Spec {
        /// Specification id.
        id: u64,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
    /// Issue a batch of certificates against a specification (its authority only).
    Issue {
        /// Specification id.
        spec: u64,
        /// Subject of one certificate: ADDRESS or ADDRESS:DATA (repeat).
        #[arg(long = "subject")]
        subjects: Vec<String>,
        /// File with one certificate per line: ADDRESS or ADDRESS,DATA.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Revoke a certificate (the issuing authority only).
    Revoke {
        /// Certificate id.
        id: u64,
        /// Reason recorded with the revocation.
        #[arg(long, default_value = "")]
        reason: String,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Whether a certificate is valid, revoked or expired at the latest block.
    Verify {
        /// Certificate id.
        id: u64,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
    /// As its subject, present (use) a certificate; refused if revoked or expired.
    Present {
        /// Certificate id.
        id: u64,
        /// What it is used for.
        #[arg(long, default_value = "")]
        purpose: String,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
}

/// One certificate request from `ADDRESS[<sep>DATA]`.
fn certificate_request(line: &str, sep: char) -> anyhow::Result<Value> {
    let (addr, data) = match line.split_once(sep) {
        Some((a, d)) => (a.trim(), d),
        None => (line.trim(), ""),
    };
    let subject: Account = addr.parse()?;
    Ok(json!({"subject": subject.hex(), "data": format!("0x{}", hex::encode(data))}))
}

fn certificate_requests(subjects: &[String], file: Option<&Path>) -> anyhow::Result<Vec<Value>> {
    let mut out = subjects
        .iter()
        .map(|s| certificate_request(s, ':').with_context(|| format!("--subject {s:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(f) = file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(
                certificate_request(line, ',')
                    .with_context(|| format!("{} line {}", f.display(), n + 1))?,
            );
        }
    }
    if out.is_empty() {
        bail!("name at least one certificate: --subject ADDRESS[:DATA] or --file FILE");
    }
    Ok(out)
}

/// Runs `quorate certs …`.
pub fn certs(cmd: CertsCommand) -> anyhow::Result<ExitCode> {
    let tx = Invocation::tx;
    let inv = match cmd {
        CertsCommand::Authorities { q } => Invocation::Query {
            method: "authorities",
            args: json!({}),
            q,
        },
        CertsCommand::AddAuthority { account, sign } => {
            tx("add_authority", json!({"account": account.hex()}), sign)
        }
        CertsCommand::RemoveAuthority { account, sign } => {
            tx("remove_authority", json!({"account": account.hex()}), sign)
        }
        CertsCommand::SetAdmin { account, sign } => {
            tx("set_admin", json!({"admin": account.hex()}), sign)
        }
        CertsCommand::CreateSpec {
            name,
            schema,
            validity,
            sign,
        } => tx(
            "create_spec",
            json!({"name": name, "schema": schema, "validity_ms": validity}),
            sign,
        ),
        CertsCommand::Spec { id, q } => Invocation::Query {
            method: "spec",
            args: json!({"id": id}),
            q,
        },
        CertsCommand::Issue {
            spec,
            subjects,
            file,
            sign,
        } => tx(
            "issue_batch",
            json!({"spec_id": spec,
                   "certificates": certificate_requests(&subjects, file.as_deref())?}),
            sign,
        ),
        CertsCommand::Revoke { id, reason, sign } => {
            tx("revoke", json!({"id": id, "reason": reason}), sign)
        }
        CertsCommand::Verify { id, q } => Invocation::Query {
            method: "verify",
            args: json!({"id": id}),
            q,
        },
        CertsCommand::Present { id, purpose, sign } => {
            tx("present", json!({"id": id, "purpose": purpose}), sign)
        }
    };
    run_invocation(CERTIFICATES, inv)
}

/// `quorate device …`
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Register a device: you become its owner.
    Register {
        /// Device id (1-64 characters).
        device: String,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Name a controller that may grant and revoke for the device (owner only).
    AddController {
        /// Device id.
        device: String,
        /// Controller (address or key file).
        controller: Account,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Remove a controller (owner only).
    RemoveController {
        /// Device id.
        device: String,
        /// Controller (address or key file).
        controller: Account,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Grant a participant permission to control the device (owner or controller only).
    Grant {
        /// Device id.
        device: String,
        /// Participant (address or key file).
        participant: Account,
        /// Allowed actions, comma-separated ("*" allows every action).
        #[arg(long, value_delimiter = ',', required = true)]
        scope: Vec<String>,
        /// When the grant stops holding: a duration from now (1h), RFC 3339 or epoch ms
        /// (default: never).
        #[arg(long)]
        expires: Option<When>,
        /// Data about you, the grantor, recorded with the grant (text); a revocation must
        /// carry the same.
        #[arg(long)]
        data: Option<String>,
        /// The grantor data as hex.
        #[arg(long)]
        data_hex: Option<String>,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Revoke a grant, with data corresponding to the grant's grantor data.
    Revoke {
        /// Grant id.
        grant: u64,
        /// The grant's grantor data (text).
        #[arg(long)]
        data: Option<String>,
        /// The grant's grantor data as hex.
        #[arg(long)]
        data_hex: Option<String>,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Whether a participant may perform an action on the device now.
    Check {
        /// Device id.
        device: String,
        /// Participant (address or key file).
        participant: Account,
        /// Action ("unlock", "read", ...).
        action: String,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
    /// Show a device: owner and controllers.
    Show {
        /// Device id.
        device: String,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
    /// The device's grants and revocations, oldest first.
    History {
        /// Device id.
        device: String,
        /// Skip this many.
        #[arg(long, default_value_t = 0)]
        offset: u32,
        /// At most this many (up to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Query options.
        #[command(flatten)]
        q: QueryOpts,
    },
}

/// Runs `quorate device …`.
pub fn device(cmd: DeviceCommand) -> anyhow::Result<ExitCode> {
    let tx = Invocation::tx;
    let inv = match cmd {
        DeviceCommand::Register { device, sign } => tx("register", json!({"device": device}), sign),
        DeviceCommand::AddController {
            device,
            controller,
            sign,
        } => tx(
            "add_controller",
            json!({"device": device, "controller": controller.hex()}),
            sign,
        ),
        DeviceCommand::RemoveController {
            device,
            controller,
            sign,
        } => tx(
            "remove_controller",
            json!({"device": device, "controller": controller.hex()}),
            sign,
        ),
        DeviceCommand::Grant {
            device,
            participant,
            scope,
            expires,
            data,
            data_hex: hex_data,
            sign,
        } => tx(
            "grant",
            json!({"device": device, "participant": participant.hex(), "scope": scope,
                   "expires_at_ms": expires.map_or(0, |w| w.0),
                   "grantor_data": data_hex(data, hex_data)?}),
            sign,
        ),
        DeviceCommand::Revoke {
            grant,
            data,
            data_hex: hex_data,
            sign,
        } => tx(
            "revoke",
            json!({"grant_id": grant, "grant_data": data_hex(data, hex_data)?}),
            sign,
        ),
        DeviceCommand::Check {
            device,
            participant,
            action,
            q,
        } => Invocation::Query {
            method: "check",
            args: json!({"device": device, "participant": participant.hex(), "action": action}),
            q,
        },
        DeviceCommand::Show { device, q } => Invocation::Query {
            method: "device",
            args: json!({"device": device}),
            q,
        },
        DeviceCommand::History {
            device,
            offset,
            limit,
            q,
        } => Invocation::Query {
            method: "history",
            args: json!({"device": device, "offset": offset, "limit": limit}),
            q,
        },
    };
    run_invocation(DEVICE_PERMISSIONS, inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_and_requests_parse() {
        assert_eq!(
            parse_allocation("payroll=50").expect("ok"),
            ("payroll".into(), 50)
        );
        assert!(parse_allocation("payroll").is_err());
        assert!(parse_allocation("payroll=-1").is_err());
        let a = "11".repeat(20);
        let r = certificate_request(&format!("{a},degree: BSc"), ',').expect("ok");
        assert_eq!(r["subject"], format!("0x{a}"));
        assert_eq!(r["data"], format!("0x{}", hex::encode("degree: BSc")));
        assert!(certificate_request("nope,data", ',').is_err());
        assert!(certificate_requests(&[], None).is_err());
    }

    #[test]
    fn times_parse() {
        assert_eq!(
            "1700000000000".parse::<When>().expect("ms").0,
            1_700_000_000_000
        );
        let t = "2030-01-01T00:00:00Z".parse::<When>().expect("rfc3339").0;
        assert_eq!(t, 1_893_456_000_000);
        let now = millis_since_epoch(SystemTime::now()).expect("now");
        let in_an_hour = "1h".parse::<When>().expect("duration").0;
        assert!(in_an_hour >= now + 3_600_000);
        assert!("soon".parse::<When>().is_err());
        assert_eq!(parse_duration_ms("90s").expect("d"), 90_000);
        assert_eq!(data_hex(Some("ab".into()), None).expect("t"), "0x6162");
        assert_eq!(data_hex(None, Some("0x00ff".into())).expect("h"), "0x00ff");
        assert!(data_hex(None, Some("zz".into())).is_err());
        assert!(data_hex(Some("a".into()), Some("00".into())).is_err());
    }
}
