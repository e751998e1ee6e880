//! The certificate issuance system contract. The contract's admin (the chain admin in
//! genesis) names certificate authorities. An authority creates a certificate specification
//! (name, schema, validity period), issues certificates against it in batches (thousands per
//! transaction within the fuel limit), and revokes them; certificates expire at issuance time
//! plus the validity period; anyone verifies one by id, and its subject presents it (refused
//! once revoked or expired).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::vec::Vec;

use quorate_sdk::storage::{Item, Map};
use quorate_sdk::{context, ensure, events, methods, Address, Error, Result};

/// Messages of `proto/proto/quorate/contracts/v1/certificates.proto`.
pub mod pb {
    include!(concat!(
        env!("OUT_DIR"),
        "/quorate.contracts.certificates.v1.rs"
    ));
}
use pb::{
    AdminArgs, Authorities, AuthorityArgs, Certificate, CertificateId, CreateSpecArgs, Empty,
    InitArgs, IssueBatchArgs, IssuedBatch, PresentArgs, Presentation, RevokeArgs, Spec, SpecId,
    Validity, Verification,
};

quorate_sdk::interface!(concat!(env!("OUT_DIR"), "/interface.bin"));

/// Most authorities.
const MAX_AUTHORITIES: usize = 64;
/// Longest name, schema, reason or purpose.
const MAX_TEXT: usize = 256;
/// Largest certificate data.
const MAX_DATA: usize = 1024;

static ROLES: Item<Authorities> = Item::new("roles");
/// The authorities again, one entry each: membership costs one storage read, not a decode of
/// the whole list.
static IS_AUTHORITY: Map<Address, bool> = Map::new("authority");
static SPECS: Map<u64, Spec> = Map::new("spec");
static NEXT_SPEC: Item<u64> = Item::new("next_spec");
static CERTS: Map<u64, Certificate> = Map::new("cert");
static NEXT_CERT: Item<u64> = Item::new("next_cert");

fn text(s: &str, what: &str) -> Result<()> {
    ensure!(
        s.len() <= MAX_TEXT,
        Error::bad_input(quorate_sdk::__format!("{what} is at most {MAX_TEXT} bytes"))
    );
    Ok(())
}

fn roles() -> Result<Authorities> {
    ROLES.load_or_default()
}

fn require_admin(r: &Authorities) -> Result<()> {
    ensure!(
        r.admin == context::caller().to_vec(),
        Error::permission_denied("only the certificates contract's admin may change its roles")
    );
    Ok(())
}

fn is_authority(a: &Address) -> bool {
    IS_AUTHORITY.has(a)
}

fn change_roles(r: Authorities) -> Authorities {
    ROLES.save(&r);
    events::emit("authorities_changed", &r);
    r
}

fn load_spec(id: u64) -> Result<Spec> {
    SPECS.get(&id)?.ok_or_else(|| {
        Error::bad_input(quorate_sdk::__format!("no certificate specification {id}"))
    })
}

fn load_cert(id: u64) -> Result<Certificate> {
    CERTS
        .get(&id)?
        .ok_or_else(|| Error::bad_input(quorate_sdk::__format!("no certificate {id}")))
}

/// A certificate's validity at `now_ms`.
pub fn validity(c: &Certificate, now_ms: u64) -> Validity {
    if c.revoked {
        Validity::Revoked
    } else if now_ms >= c.expires_at_ms {
        Validity::Expired
    } else {
        Validity::Valid
    }
}

methods! {
    /// Sets the admin and the first authorities (at deploy).
    fn init(args: InitArgs) -> Result<Authorities> {
        let admin = if args.admin.is_empty() { context::caller() } else { Address::from_slice(&args.admin)? };
        let mut authorities: Vec<Vec<u8>> = Vec::new();
        for a in &args.authorities {
            let a = Address::from_slice(a)?.to_vec();
            if !authorities.contains(&a) {
                authorities.push(a);
            }
        }
        ensure!(authorities.len() <= MAX_AUTHORITIES, Error::bad_input("at most 64 authorities"));
        for a in &authorities {
            IS_AUTHORITY.set(&Address::from_slice(a)?, &true);
        }
        Ok(change_roles(Authorities { admin: admin.to_vec(), authorities }))
    }

    /// Names a certificate authority (admin only).
    fn add_authority(args: AuthorityArgs) -> Result<Authorities> {
        let mut r = roles()?;
        require_admin(&r)?;
        let a = Address::from_slice(&args.account)?.to_vec();
        ensure!(!r.authorities.contains(&a), Error::bad_input("already an authority"));
        ensure!(r.authorities.len() < MAX_AUTHORITIES, Error::new("at most 64 authorities"));
        IS_AUTHORITY.set(&Address::from_slice(&a)?, &true);
        r.authorities.push(a);
        Ok(change_roles(r))
    }

    /// Removes a certificate authority (admin only); its certificates stay as they are.
    fn remove_authority(args: AuthorityArgs) -> Result<Authorities> {
        let mut r = roles()?;
        require_admin(&r)?;
        let a = Address::from_slice(&args.account)?.to_vec();
        let before = r.authorities.len();
        r.authorities.retain(|x| *x != a);
        IS_AUTHORITY.remove(&Address::from_slice(&a)?);
        ensure!(r.authorities.len() < before, Error::bad_input("not an authority"));
        Ok(change_roles(r))
    }

    /// Hands the admin role on (admin only).
    fn set_admin(args: AdminArgs) -> Result<Authorities> {
        let mut r = roles()?;
        require_admin(&r)?;
        r.admin = Address::from_slice(&args.admin)?.to_vec();
        Ok(change_roles(r))
    }

    /// The admin and the authorities.
    fn authorities(_args: Empty) -> Result<Authorities> {
        roles()
    }

    /// Creates a certificate specification (authorities only).
    fn create_spec(args: CreateSpecArgs) -> Result<Spec> {
        let caller = context::caller().to_vec();
        ensure!(
            is_authority(&context::caller()),
            Error::permission_denied("only a certificate authority may create specifications")
        );
        ensure!(!args.name.is_empty(), Error::bad_input("a specification needs a name"));
        text(&args.name, "name")?;
        text(&args.schema, "schema")?;
        ensure!(args.validity_ms > 0, Error::bad_input("validity_ms must be positive"));
        let id = NEXT_SPEC.load()?.unwrap_or(1);
        NEXT_SPEC.save(&(id + 1));
        let spec = Spec {
            id,
            authority: caller,
            name: args.name,
            schema: args.schema,
            validity_ms: args.validity_ms,
            created_height: context::block_height(),
            issued: 0,
            revoked: 0,
        };
        SPECS.set(&id, &spec);
        events::emit("spec_created", &spec);
        Ok(spec)
    }

    /// A specification.
    fn spec(args: SpecId) -> Result<Spec> {
        load_spec(args.id)
    }

    /// Issues a batch of certificates against a specification (its authority only, while it
    /// is still an authority).
    fn issue_batch(args: IssueBatchArgs) -> Result<IssuedBatch> {
        let mut spec = load_spec(args.spec_id)?;
        let caller = context::caller().to_vec();
        ensure!(
            spec.authority == caller && is_authority(&context::caller()),
            Error::permission_denied("only the specification's authority may issue against it")
        );
        ensure!(!args.certificates.is_empty(), Error::bad_input("the batch is empty"));
        let now = context::block_time_ms();
        let expires_at_ms = now.saturating_add(spec.validity_ms);
        let first_id = NEXT_CERT.load()?.unwrap_or(1);
        let mut id = first_id;
        for req in args.certificates {
            let subject = Address::from_slice(&req.subject)?;
            ensure!(
                req.data.len() <= MAX_DATA,
                Error::bad_input("certificate data is at most 1024 bytes")
            );
            CERTS.set(&id, &Certificate {
                id,
                spec_id: spec.id,
                issuer: caller.clone(),
                subject: subject.to_vec(),
                data: req.data,
                issued_at_ms: now,
                expires_at_ms,
                ..Certificate::default()
            });
            id += 1;
        }
        let count = id - first_id;
        NEXT_CERT.save(&id);
        spec.issued += count;
        SPECS.set(&spec.id, &spec);
        let batch = IssuedBatch { spec_id: spec.id, first_id, count: count as u32, expires_at_ms };
        events::emit("issued", &batch);
        Ok(batch)
    }

    /// Revokes a certificate (the issuing authority only).
    fn revoke(args: RevokeArgs) -> Result<Certificate> {
        let mut c = load_cert(args.id)?;
        ensure!(
            c.issuer == context::caller().to_vec(),
            Error::permission_denied("only the issuing authority may revoke a certificate")
        );
        ensure!(!c.revoked, Error::new(quorate_sdk::__format!("certificate {} is already revoked", c.id)));
        text(&args.reason, "reason")?;
        c.revoked = true;
        c.revocation_reason = args.reason;
        c.revoked_at_ms = context::block_time_ms();
        CERTS.set(&c.id, &c);
        let mut spec = load_spec(c.spec_id)?;
        spec.revoked += 1;
        SPECS.set(&spec.id, &spec);
        events::emit("revoked", &c);
        Ok(c)
    }

    /// Whether a certificate is valid, revoked or expired now (UNKNOWN if there is none).
    fn verify(args: CertificateId) -> Result<Verification> {
        let now = context::block_time_ms();
        Ok(match CERTS.get(&args.id)? {
            None => Verification { validity: Validity::Unknown as i32, certificate: None, checked_at_ms: now },
            Some(c) => Verification {
                validity: validity(&c, now) as i32,
                certificate: Some(c),
                checked_at_ms: now,
            },
        })
    }

    /// The subject presents (uses) a certificate: refused if it is revoked or expired.
    fn present(args: PresentArgs) -> Result<Presentation> {
        let c = load_cert(args.id)?;
        let caller = context::caller();
        ensure!(
            c.subject == caller.to_vec(),
            Error::permission_denied("only the certificate's subject may present it")
        );
        text(&args.purpose, "purpose")?;
        let now = context::block_time_ms();
        match validity(&c, now) {
            Validity::Revoked => {
                return Err(Error::new(quorate_sdk::__format!(
                    "certificate {} was revoked: {}",
                    c.id, c.revocation_reason
                )))
            }
            Validity::Expired => {
                return Err(Error::new(quorate_sdk::__format!(
                    "certificate {} expired at {} (block time {now})",
                    c.id, c.expires_at_ms
                )))
            }
            _ => {}
        }
        let p = Presentation { id: c.id, subject: caller.to_vec(), purpose: args.purpose, time_ms: now };
        events::emit("presented", &p);
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_sdk::{testing, ErrorKind};

    const ADMIN: Address = Address([1; 20]);
    const CA: Address = Address([2; 20]);
    const SUBJECT: Address = Address([3; 20]);

    fn setup() -> u64 {
        testing::reset();
        testing::set_block(1, 1_000);
        testing::set_caller(ADMIN);
        init(InitArgs {
            admin: ADMIN.to_vec(),
            authorities: vec![CA.to_vec()],
        })
        .expect("init");
        testing::set_caller(CA);
        create_spec(CreateSpecArgs {
            name: "diploma".into(),
            schema: "v1".into(),
            validity_ms: 10_000,
        })
        .expect("spec")
        .id
    }

    #[test]
    fn batch_issue_verify_revoke_expire() {
        let spec = setup();
        let reqs = (0..1000)
            .map(|i| pb::CertificateRequest {
                subject: SUBJECT.to_vec(),
                data: vec![i as u8],
            })
            .collect();
        let batch = issue_batch(IssueBatchArgs {
            spec_id: spec,
            certificates: reqs,
        })
        .expect("issue");
        assert_eq!((batch.first_id, batch.count), (1, 1000));
        let v = verify(CertificateId { id: 1000 }).expect("verify");
        assert_eq!(v.validity, Validity::Valid as i32);
        revoke(RevokeArgs {
            id: 5,
            reason: "fraud".into(),
        })
        .expect("revoke");
        assert_eq!(
            verify(CertificateId { id: 5 }).expect("verify").validity,
            Validity::Revoked as i32
        );
        testing::set_caller(SUBJECT);
        assert!(present(PresentArgs {
            id: 5,
            purpose: "job".into()
        })
        .is_err());
        present(PresentArgs {
            id: 6,
            purpose: "job".into(),
        })
        .expect("valid");
        testing::set_block(9, 11_000);
        assert_eq!(
            verify(CertificateId { id: 6 }).expect("verify").validity,
            Validity::Expired as i32
        );
        assert!(present(PresentArgs {
            id: 6,
            purpose: "job".into()
        })
        .is_err());
        for unknown in [0, 1001] {
            assert_eq!(
                verify(CertificateId { id: unknown })
                    .expect("verify")
                    .validity,
                Validity::Unknown as i32
            );
        }
    }

    #[test]
    fn only_authorities_issue_and_only_the_admin_names_them() {
        let spec = setup();
        testing::set_caller(SUBJECT);
        let err = issue_batch(IssueBatchArgs {
            spec_id: spec,
            certificates: vec![pb::CertificateRequest {
                subject: SUBJECT.to_vec(),
                data: vec![],
            }],
        })
        .expect_err("not the authority");
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
        assert_eq!(
            add_authority(AuthorityArgs {
                account: SUBJECT.to_vec()
            })
            .expect_err("not admin")
            .kind,
            ErrorKind::PermissionDenied
        );
        testing::set_caller(ADMIN);
        add_authority(AuthorityArgs {
            account: SUBJECT.to_vec(),
        })
        .expect("admin adds");
        testing::set_caller(SUBJECT);
        create_spec(CreateSpecArgs {
            name: "badge".into(),
            schema: String::new(),
            validity_ms: 5,
        })
        .expect("new authority");
        testing::set_caller(ADMIN);
        remove_authority(AuthorityArgs {
            account: SUBJECT.to_vec(),
        })
        .expect("admin removes");
        testing::set_caller(SUBJECT);
        let err = create_spec(CreateSpecArgs {
            name: "badge".into(),
            schema: String::new(),
            validity_ms: 5,
        })
        .expect_err("no longer an authority");
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
    }
}
