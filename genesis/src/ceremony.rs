//! The key ceremony (issue 28): each organisation makes its validator key and accounts on its
//! own host and hands over only a public entry, signed by that validator key (as a `gentx` is);
//! the genesis is assembled from entries alone, the same genesis from the same entries whoever
//! assembles; each organisation checks that its entry is in the result unaltered.

use serde::{Deserialize, Serialize};

use crate::{
    ChainParams, Genesis, GenesisAccount, GenesisError, GenesisGovernance, GenesisMember,
    GenesisValidator,
};
use quorate_proto::crypto::{Address, Keypair, PublicKey};

/// Domain of an entry's signature: an entry's signature signs nothing else.
const ENTRY_DOMAIN: &[u8] = b"quorate/v1/genesis-entry\0";

/// One organisation's public part of a genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The chain it is for (an entry is not taken into another chain's genesis).
    pub chain_id: String,
    /// The organisation, as its validator is named.
    pub name: String,
    /// Its validator's public key, hex (consensus and network identity).
    pub validator_key: String,
    /// Where its validator listens for peers (a multiaddr ending in `/p2p/<peer id>`), or empty.
    pub p2p_address: String,
    /// Its accounts funded at genesis.
    pub accounts: Vec<GenesisAccount>,
    /// The account that approves governance proposals for it (address, hex; ADR 0016), or
    /// empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub member: String,
    /// ed25519 signature by the validator key over everything above, hex.
    pub signature: String,
}

/// The signed part of an entry, in its field order.
#[derive(Serialize)]
struct Signed<'a> {
    chain_id: &'a str,
    name: &'a str,
    validator_key: &'a str,
    p2p_address: &'a str,
    accounts: &'a [GenesisAccount],
    #[serde(skip_serializing_if = "str::is_empty")]
    member: &'a str,
}

/// Why an entry or an assembled genesis is refused.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// The entry's signature is not its validator key's over its contents.
    #[error(
        "entry {0:?}: its signature does not verify under its validator key (unsigned or altered)"
    )]
    BadSignature(String),
    /// The entry is for another chain.
    #[error("entry {name:?} is for chain {found:?}, not {expected:?}")]
    WrongChain {
        /// The entry.
        name: String,
        /// Its chain.
        found: String,
        /// The chain being assembled.
        expected: String,
    },
    /// A key, address or name that does not parse.
    #[error("entry {name:?}: {what}")]
    Malformed {
        /// The entry.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// Two entries share a name, a validator key or an account.
    #[error("{0} appears in two entries")]
    Duplicate(String),
    /// No entry given.
    #[error("no entries: a genesis needs at least one organisation")]
    NoEntries,
    /// The admin named is none of the entries' accounts.
    #[error("the admin {0} is none of the entries' accounts")]
    UnknownAdmin(String),
    /// Governance asked for, and an entry names no member.
    #[error("entry {0:?} names no governance member: make it again with `quorate genesis entry --member`, or assemble without governance")]
    NoMember(String),
    /// The genesis does not hold the entry as signed.
    #[error("the genesis does not hold entry {name:?} as signed: {what}")]
    NotInGenesis {
        /// The entry.
        name: String,
        /// What is missing or different.
        what: String,
    },
    /// The genesis is not what the entries give (an assembler added, left out or changed
    /// something no organisation signed).
    #[error("the genesis is not the one the entries give: {0}")]
    NotFromEntries(String),
    /// The organisation's own entry is not among the entries given.
    #[error("the entry of {0:?} is not among the entries given")]
    OwnEntryMissing(String),
    /// The assembled genesis breaks a genesis rule.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
}

impl Entry {
    /// The entry of organisation `name` for `chain_id`, signed by its validator `key`;
    /// `member` approves governance proposals for it (empty: none).
    pub fn sign(
        chain_id: &str,
        name: &str,
        key: &Keypair,
        p2p_address: &str,
        accounts: Vec<GenesisAccount>,
        member: &str,
    ) -> Self {
        let mut entry = Self {
            chain_id: chain_id.to_owned(),
            name: name.to_owned(),
            validator_key: key.public().to_hex(),
            p2p_address: p2p_address.to_owned(),
            accounts,
            member: member.to_owned(),
            signature: String::new(),
        };
        entry.signature = hex::encode(key.sign(&entry.signed_bytes()));
        entry
    }

    /// What the signature signs: the domain, then the compact JSON of the signed fields.
    fn signed_bytes(&self) -> Vec<u8> {
        let signed = Signed {
            chain_id: &self.chain_id,
            name: &self.name,
            validator_key: &self.validator_key,
            p2p_address: &self.p2p_address,
            accounts: &self.accounts,
            member: &self.member,
        };
        let mut bytes = ENTRY_DOMAIN.to_vec();
        bytes.extend(serde_json::to_vec(&signed).expect("an entry serializes"));
        bytes
    }

    /// Checks the signature and the shape of every key and address.
    pub fn verify(&self) -> Result<(), CeremonyError> {
        let malformed = |what: String| CeremonyError::Malformed {
            name: self.name.clone(),
            what,
        };
        let key = PublicKey::from_hex(&self.validator_key)
            .map_err(|e| malformed(format!("validator key: {e}")))?;
        for a in &self.accounts {
            Address::from_hex(&a.address)
                .map_err(|e| malformed(format!("account {:?}: {e}", a.address)))?;
        }
        if !self.member.is_empty() {
            Address::from_hex(&self.member)
                .map_err(|e| malformed(format!("member {:?}: {e}", self.member)))?;
        }
        let signature = hex::decode(&self.signature)
            .map_err(|_| CeremonyError::BadSignature(self.name.clone()))?;
        if !quorate_proto::crypto::verify_strict(&key.0, &self.signed_bytes(), &signature) {
            return Err(CeremonyError::BadSignature(self.name.clone()));
        }
        Ok(())
    }

    /// Parses an entry file's text.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The entry as a file's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an entry serializes") + "\n"
    }
}

/// Who administers the assembled chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authority {
    /// Nobody: the chain has no administration.
    None,
    /// One account (address, hex), which must be one of the entries' accounts.
    Admin(String),
    /// The organisations together: these thresholds and lifetime (their `members` are
    /// ignored), with each entry's `member` as a member under the entry's name.
    Governance(GenesisGovernance),
}

impl Authority {
    /// The authority `genesis` names (what an assembler chose), for assembling it again.
    pub fn of(genesis: &Genesis) -> Self {
        match (&genesis.admin, &genesis.governance) {
            (Some(a), _) => Self::Admin(a.clone()),
            (None, Some(g)) => Self::Governance(g.clone()),
            (None, None) => Self::None,
        }
    }
}

/// The genesis of `chain_id` from `entries` (each checked): validators and accounts in the
/// order of the organisations' names, so that whoever assembles the same entries with the same
/// time, parameters and authority gets the same genesis, hash included. Every system contract
/// of this release is deployed.
pub fn assemble(
    chain_id: &str,
    genesis_time_ms: u64,
    entries: &[Entry],
    params: ChainParams,
    authority: &Authority,
) -> Result<Genesis, CeremonyError> {
    if entries.is_empty() {
        return Err(CeremonyError::NoEntries);
    }
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut seen = std::collections::HashSet::new();
    for e in &sorted {
        e.verify()?;
        if e.chain_id != chain_id {
            return Err(CeremonyError::WrongChain {
                name: e.name.clone(),
                found: e.chain_id.clone(),
                expected: chain_id.to_owned(),
            });
        }
        let unique = [
            format!("name {:?}", e.name),
            format!("validator key {}", e.validator_key),
        ]
        .into_iter()
        .chain(e.accounts.iter().map(|a| format!("account {}", a.address)));
        for item in unique {
            if !seen.insert(item.clone()) {
                return Err(CeremonyError::Duplicate(item));
            }
        }
    }
    let accounts: Vec<GenesisAccount> = sorted.iter().flat_map(|e| e.accounts.clone()).collect();
    let (admin, governance) = match authority {
        Authority::None => (None, None),
        Authority::Admin(a) => {
            if !accounts.iter().any(|x| &x.address == a) {
                return Err(CeremonyError::UnknownAdmin(a.to_owned()));
            }
            (Some(a.clone()), None)
        }
        Authority::Governance(terms) => {
            let members = sorted
                .iter()
                .map(|e| {
                    if e.member.is_empty() {
                        return Err(CeremonyError::NoMember(e.name.clone()));
                    }
                    Ok(GenesisMember {
                        name: e.name.clone(),
                        address: e.member.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
            (
                None,
                Some(GenesisGovernance {
                    members,
                    ..terms.clone()
                }),
            )
        }
    };
    let genesis = Genesis {
        chain_id: chain_id.to_owned(),
        genesis_time_ms,
        validators: sorted
            .iter()
            .map(|e| GenesisValidator {
                name: e.name.clone(),
                public_key: e.validator_key.clone(),
            })
            .collect(),
        accounts,
        params,
        admin,
        governance,
        trusted_deployers: Vec::new(),
        engine_fingerprint: None,
        system_contracts: crate::release_system_contracts(),
        certificate_authorities: Vec::new(),
    };
    genesis.validate()?;
    Ok(genesis)
}

/// Checks `genesis` for the organisation of `own`, given every organisation's entry (`all`,
/// `own` among them): its own validator and accounts are there as it signed them, and the
/// genesis is exactly what the entries assemble to with its time, parameters and authority
/// (admin, or thresholds with the entries' members), so an
/// assembler cannot add a validator or an account, nor set anything no entry holds (trusted
/// deployers, certificate authorities, an engine, other system contracts). Returns its
/// validator's index.
pub fn check(genesis: &Genesis, own: &Entry, all: &[Entry]) -> Result<usize, CeremonyError> {
    own.verify()?;
    if !all.contains(own) {
        return Err(CeremonyError::OwnEntryMissing(own.name.clone()));
    }
    let missing = |what: String| CeremonyError::NotInGenesis {
        name: own.name.clone(),
        what,
    };
    if genesis.chain_id != own.chain_id {
        return Err(missing(format!(
            "the genesis is of chain {:?}, the entry of {:?}",
            genesis.chain_id, own.chain_id
        )));
    }
    let index = genesis
        .validators
        .iter()
        .position(|v| v.public_key == own.validator_key && v.name == own.name)
        .ok_or_else(|| {
            missing(format!(
                "no validator {:?} with key {}",
                own.name, own.validator_key
            ))
        })?;
    for a in &own.accounts {
        match genesis.accounts.iter().find(|x| x.address == a.address) {
            Some(x) if x.balance == a.balance => {}
            Some(x) => {
                return Err(missing(format!(
                    "account {} has balance {}, the entry {}",
                    a.address, x.balance, a.balance
                )))
            }
            None => return Err(missing(format!("no account {}", a.address))),
        }
    }
    let rebuilt = assemble(
        &genesis.chain_id,
        genesis.genesis_time_ms,
        all,
        genesis.params.clone(),
        &Authority::of(genesis),
    )?;
    if rebuilt != *genesis {
        let differs = [
            ("validators", rebuilt.validators != genesis.validators),
            ("accounts", rebuilt.accounts != genesis.accounts),
            (
                "governance members",
                rebuilt.governance != genesis.governance,
            ),
            (
                "trusted deployers",
                rebuilt.trusted_deployers != genesis.trusted_deployers,
            ),
            (
                "certificate authorities",
                rebuilt.certificate_authorities != genesis.certificate_authorities,
            ),
            (
                "engine",
                rebuilt.engine_fingerprint != genesis.engine_fingerprint,
            ),
            (
                "system contracts",
                rebuilt.system_contracts != genesis.system_contracts,
            ),
        ]
        .iter()
        .filter(|(_, d)| *d)
        .map(|(w, _)| *w)
        .collect::<Vec<_>>()
        .join(", ");
        return Err(CeremonyError::NotFromEntries(format!(
            "its {differs} differ"
        )));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, chain: &str) -> (Entry, Keypair, Keypair) {
        let key = Keypair::generate();
        let account = Keypair::generate();
        let e = Entry::sign(
            chain,
            name,
            &key,
            "",
            vec![GenesisAccount {
                name: format!("{name}-treasury"),
                address: account.address().to_hex(),
                balance: 1_000,
            }],
            &account.address().to_hex(),
        );
        (e, key, account)
    }

    #[test]
    fn the_same_entries_give_the_same_genesis_whoever_assembles_and_each_finds_its_own() {
        let (a, ..) = entry("org-a", "consortium");
        let (b, ..) = entry("org-b", "consortium");
        let (c, ..) = entry("org-c", "consortium");
        let one = assemble(
            "consortium",
            7,
            &[a.clone(), b.clone(), c.clone()],
            ChainParams::default(),
            &Authority::None,
        )
        .expect("assembles");
        let other = assemble(
            "consortium",
            7,
            &[c.clone(), a.clone(), b.clone()],
            ChainParams::default(),
            &Authority::None,
        )
        .expect("assembles");
        assert_eq!(one.hash(), other.hash(), "the order given does not matter");
        let all = [a.clone(), b.clone(), c.clone()];
        assert_eq!(check(&one, &a, &all).expect("a"), 0);
        assert_eq!(check(&one, &c, &all).expect("c"), 2);
        assert_eq!(
            Entry::from_json(&a.to_json()).expect("parses"),
            a,
            "an entry file round-trips"
        );
    }

    #[test]
    fn an_altered_unsigned_foreign_or_duplicate_entry_is_refused_and_an_altered_genesis_found() {
        let (a, ..) = entry("org-a", "consortium");
        let (b, ..) = entry("org-b", "consortium");
        let mut richer = b.clone();
        richer.accounts[0].balance = 1_000_000;
        assert!(matches!(
            assemble("consortium", 7, &[a.clone(), richer], ChainParams::default(), &Authority::None),
            Err(CeremonyError::BadSignature(n)) if n == "org-b"
        ));
        let mut unsigned = b.clone();
        unsigned.signature.clear();
        assert!(matches!(
            unsigned.verify(),
            Err(CeremonyError::BadSignature(_))
        ));
        let (other_chain, ..) = entry("org-c", "another");
        assert!(matches!(
            assemble(
                "consortium",
                7,
                &[a.clone(), other_chain],
                ChainParams::default(),
                &Authority::None
            ),
            Err(CeremonyError::WrongChain { .. })
        ));
        assert!(matches!(
            assemble(
                "consortium",
                7,
                &[a.clone(), a.clone()],
                ChainParams::default(),
                &Authority::None
            ),
            Err(CeremonyError::Duplicate(_))
        ));
        assert!(matches!(
            assemble(
                "consortium",
                7,
                &[a.clone(), b.clone()],
                ChainParams::default(),
                &Authority::Admin("00".into())
            ),
            Err(CeremonyError::UnknownAdmin(_))
        ));
        // The assembler moves funds: the organisation's check finds it.
        let all = [a.clone(), b.clone()];
        let honest = assemble(
            "consortium",
            7,
            &all,
            ChainParams::default(),
            &Authority::None,
        )
        .expect("ok");
        let mut genesis = honest.clone();
        genesis.accounts[0].balance += 1;
        assert!(matches!(
            check(&genesis, &a, &all),
            Err(CeremonyError::NotInGenesis { .. })
        ));
        // A validator or a trusted deployer no entry holds: caught by every organisation.
        let mut extra = honest.clone();
        extra.validators.push(GenesisValidator {
            name: "zz-assembler".into(),
            public_key: Keypair::generate().public().to_hex(),
        });
        assert!(matches!(
            check(&extra, &a, &all),
            Err(CeremonyError::NotFromEntries(w)) if w.contains("validators")
        ));
        let mut deployer = honest.clone();
        deployer
            .trusted_deployers
            .push(Keypair::generate().address().to_hex());
        assert!(matches!(
            check(&deployer, &b, &all),
            Err(CeremonyError::NotFromEntries(w)) if w.contains("trusted deployers")
        ));
        // Its own entry must be among those given.
        assert!(matches!(
            check(&honest, &a, std::slice::from_ref(&b)),
            Err(CeremonyError::OwnEntryMissing(_))
        ));
    }

    #[test]
    fn governance_members_come_from_the_entries_and_a_slipped_in_member_is_found() {
        let (a, ..) = entry("org-a", "consortium");
        let (b, ..) = entry("org-b", "consortium");
        let (c, ..) = entry("org-c", "consortium");
        let all = [c.clone(), a.clone(), b.clone()];
        let terms = GenesisGovernance::uniform(Vec::new(), 2, 50);
        let g = assemble(
            "consortium",
            7,
            &all,
            ChainParams::default(),
            &Authority::Governance(terms.clone()),
        )
        .expect("assembles");
        let policy = g.governance.clone().expect("governed");
        assert_eq!(g.admin, None);
        let members: Vec<(&str, &str)> = policy
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.address.as_str()))
            .collect();
        assert_eq!(
            members,
            [
                ("org-a", a.member.as_str()),
                ("org-b", b.member.as_str()),
                ("org-c", c.member.as_str())
            ]
        );
        assert_eq!(check(&g, &b, &all).expect("b"), 1);
        // The assembler makes itself a member (or swaps one's address): every check finds it.
        let mut slipped = g.clone();
        slipped
            .governance
            .as_mut()
            .expect("governed")
            .members
            .push(GenesisMember {
                name: "zz-assembler".into(),
                address: Keypair::generate().address().to_hex(),
            });
        assert!(matches!(
            check(&slipped, &a, &all),
            Err(CeremonyError::NotFromEntries(w)) if w.contains("governance members")
        ));
        // A threshold the members cannot reach is refused.
        assert!(matches!(
            assemble(
                "consortium",
                7,
                &all,
                ChainParams::default(),
                &Authority::Governance(GenesisGovernance::uniform(Vec::new(), 4, 50)),
            ),
            Err(CeremonyError::Genesis(GenesisError::Governance(_)))
        ));
        // An entry without a member cannot take part in governance.
        let key = Keypair::generate();
        let memberless = Entry::sign("consortium", "org-d", &key, "", Vec::new(), "");
        assert!(matches!(
            assemble(
                "consortium",
                7,
                &[a.clone(), memberless],
                ChainParams::default(),
                &Authority::Governance(terms),
            ),
            Err(CeremonyError::NoMember(n)) if n == "org-d"
        ));
    }
}
