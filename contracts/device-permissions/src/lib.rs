//! The device control permissions system contract. An account registers a device and owns it;
//! the owner names controllers. The owner or a controller grants a participant permission to
//! control the device (a scope of actions, an expiry, and data about the granting participant);
//! a revocation carries data that must correspond to the grant's (the grantor data). Anyone
//! asks whether a participant may perform an action on a device now, and reads the device's
//! grant and revocation history.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use quorate_sdk::storage::{Item, Map};
use quorate_sdk::{context, ensure, events, methods, Address, Error, Result};

/// Messages of `proto/proto/quorate/contracts/v1/device_permissions.proto`.
pub mod pb {
    include!(concat!(
        env!("OUT_DIR"),
        "/quorate.contracts.device_permissions.v1.rs"
    ));
}
use pb::{
    CheckArgs, CheckResult, ControllerArgs, Device, DeviceArgs, Grant, GrantArgs, History,
    HistoryArgs, HistoryEntry, RegisterArgs, RevokeArgs,
};

quorate_sdk::interface!(concat!(env!("OUT_DIR"), "/interface.bin"));

/// Longest device id.
const MAX_DEVICE_ID: usize = 64;
/// Most controllers of a device.
const MAX_CONTROLLERS: usize = 16;
/// Most actions in a scope, and the longest action name.
const MAX_SCOPE: usize = 16;
const MAX_ACTION: usize = 32;
/// Largest grantor data.
const MAX_GRANTOR_DATA: usize = 512;
/// Most grants one participant may hold on one device at once (active or not).
const MAX_GRANTS_PER_PARTICIPANT: usize = 32;
/// The scope action that allows every action.
const ANY_ACTION: &str = "*";

static DEVICES: Map<str, Device> = Map::new("device");
static GRANTS: Map<u64, Grant> = Map::new("grant");
static NEXT_GRANT: Item<u64> = Item::new("next_grant");
/// Grant ids by (device, participant), for `check`.
static BY_PARTICIPANT: Map<(String, Address), GrantIds> = Map::new("by_participant");
static HISTORY_LEN: Map<str, u64> = Map::new("history_len");
static HISTORY: Map<(String, u64), HistoryEntry> = Map::new("history");

/// A list of grant ids (stored).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GrantIds {
    /// The ids.
    #[prost(uint64, repeated, tag = "1")]
    pub ids: Vec<u64>,
}

fn device_id(id: &str) -> Result<()> {
    ensure!(
        !id.is_empty() && id.len() <= MAX_DEVICE_ID,
        Error::bad_input("a device id is 1 to 64 characters")
    );
    Ok(())
}

fn load_device(id: &str) -> Result<Device> {
    device_id(id)?;
    DEVICES
        .get(id)?
        .ok_or_else(|| Error::bad_input(quorate_sdk::__format!("device {id:?} is not registered")))
}

fn is_owner_or_controller(d: &Device, who: &[u8]) -> bool {
    d.owner == who || d.controllers.iter().any(|c| c == who)
}

fn record(device: &str, kind: &str, grant: &Grant) {
    let n = HISTORY_LEN.get_or_default(device).unwrap_or_default();
    let entry = HistoryEntry {
        kind: kind.into(),
        grant: Some(grant.clone()),
        by: context::caller().to_vec(),
        height: context::block_height(),
        time_ms: context::block_time_ms(),
    };
    HISTORY.set(&(String::from(device), n), &entry);
    HISTORY_LEN.set(device, &(n + 1));
}

fn change_controllers(args: &ControllerArgs, add: bool) -> Result<Device> {
    let mut d = load_device(&args.device)?;
    ensure!(
        d.owner == context::caller().to_vec(),
        Error::permission_denied("only the device's owner may change its controllers")
    );
    let c = Address::from_slice(&args.controller)?.to_vec();
    if add {
        ensure!(
            !d.controllers.contains(&c),
            Error::bad_input("already a controller")
        );
        ensure!(
            d.controllers.len() < MAX_CONTROLLERS,
            Error::new("at most 16 controllers")
        );
        d.controllers.push(c);
    } else {
        let before = d.controllers.len();
        d.controllers.retain(|x| *x != c);
        ensure!(
            d.controllers.len() < before,
            Error::bad_input("not a controller")
        );
    }
    DEVICES.set(&args.device, &d);
    events::emit("controllers_changed", &d);
    Ok(d)
}

/// Why `g` does not allow `action` at `now_ms`, or `None` if it does.
pub fn refusal(g: &Grant, action: &str, now_ms: u64) -> Option<String> {
    if g.revoked {
        return Some(quorate_sdk::__format!("grant {} was revoked", g.id));
    }
    if g.expires_at_ms != 0 && now_ms >= g.expires_at_ms {
        return Some(quorate_sdk::__format!(
            "grant {} expired at {}",
            g.id,
            g.expires_at_ms
        ));
    }
    if !g.scope.iter().any(|a| a == action || a == ANY_ACTION) {
        return Some(quorate_sdk::__format!(
            "grant {} does not cover {action:?}",
            g.id
        ));
    }
    None
}

methods! {
    /// The caller registers a device and becomes its owner.
    fn register(args: RegisterArgs) -> Result<Device> {
        device_id(&args.device)?;
        ensure!(
            !DEVICES.has(&args.device),
            Error::new(quorate_sdk::__format!("device {:?} is already registered", args.device))
        );
        let d = Device {
            id: args.device.clone(),
            owner: context::caller().to_vec(),
            controllers: Vec::new(),
            registered_height: context::block_height(),
        };
        DEVICES.set(&args.device, &d);
        events::emit("registered", &d);
        Ok(d)
    }

    /// Names a controller (owner only).
    fn add_controller(args: ControllerArgs) -> Result<Device> {
        change_controllers(&args, true)
    }

    /// Removes a controller (owner only).
    fn remove_controller(args: ControllerArgs) -> Result<Device> {
        change_controllers(&args, false)
    }

    /// Grants a participant permission to control the device (owner or controller).
    fn grant(args: GrantArgs) -> Result<Grant> {
        let d = load_device(&args.device)?;
        let grantor = context::caller();
        ensure!(
            is_owner_or_controller(&d, &grantor.0),
            Error::permission_denied("only the device's owner or a controller it named may grant")
        );
        let participant = Address::from_slice(&args.participant)?;
        ensure!(
            !args.scope.is_empty() && args.scope.len() <= MAX_SCOPE,
            Error::bad_input("a scope holds 1 to 16 actions")
        );
        ensure!(
            args.scope.iter().all(|a| !a.is_empty() && a.len() <= MAX_ACTION),
            Error::bad_input("an action is 1 to 32 characters")
        );
        ensure!(
            args.grantor_data.len() <= MAX_GRANTOR_DATA,
            Error::bad_input("grantor data is at most 512 bytes")
        );
        let now = context::block_time_ms();
        ensure!(
            args.expires_at_ms == 0 || args.expires_at_ms > now,
            Error::bad_input("the expiry must be after the current block time (or 0 for none)")
        );
        let key = (args.device.clone(), participant);
        let mut ids = BY_PARTICIPANT.get_or_default(&key)?;
        // Keep the index small: forget grants that no longer hold.
        let mut live = Vec::new();
        for id in ids.ids {
            if let Some(g) = GRANTS.get(&id)? {
                if !g.revoked && (g.expires_at_ms == 0 || g.expires_at_ms > now) {
                    live.push(id);
                }
            }
        }
        ensure!(
            live.len() < MAX_GRANTS_PER_PARTICIPANT,
            Error::new("this participant already holds 32 live grants on the device")
        );
        let id = NEXT_GRANT.load()?.unwrap_or(1);
        NEXT_GRANT.save(&(id + 1));
        let g = Grant {
            id,
            device: args.device.clone(),
            participant: participant.to_vec(),
            grantor: grantor.to_vec(),
            grantor_data: args.grantor_data,
            scope: args.scope,
            granted_at_ms: now,
            expires_at_ms: args.expires_at_ms,
            ..Grant::default()
        };
        GRANTS.set(&id, &g);
        live.push(id);
        ids = GrantIds { ids: live };
        BY_PARTICIPANT.set(&key, &ids);
        record(&args.device, "grant", &g);
        events::emit("granted", &g);
        Ok(g)
    }

    /// Revokes a grant: by the owner, a controller or the grantor, with data corresponding to
    /// the grant (its grantor data).
    fn revoke(args: RevokeArgs) -> Result<Grant> {
        let mut g = GRANTS
            .get(&args.grant_id)?
            .ok_or_else(|| Error::bad_input(quorate_sdk::__format!("no grant {}", args.grant_id)))?;
        let d = load_device(&g.device)?;
        let caller = context::caller().to_vec();
        ensure!(
            is_owner_or_controller(&d, &caller) || g.grantor == caller,
            Error::permission_denied("only the device's owner, a controller or the grantor may revoke")
        );
        ensure!(!g.revoked, Error::new(quorate_sdk::__format!("grant {} is already revoked", g.id)));
        ensure!(
            args.grant_data == g.grantor_data,
            Error::bad_input("the revocation's data does not correspond to the grant's grantor data")
        );
        g.revoked = true;
        g.revoked_by = caller;
        g.revoke_data = args.grant_data;
        g.revoked_at_ms = context::block_time_ms();
        GRANTS.set(&g.id, &g);
        record(&g.device, "revoke", &g);
        events::emit("revoked", &g);
        Ok(g)
    }

    /// Whether `participant` may perform `action` on the device now.
    fn check(args: CheckArgs) -> Result<CheckResult> {
        let now = context::block_time_ms();
        let d = load_device(&args.device)?;
        let participant = Address::from_slice(&args.participant)?;
        if d.owner == participant.to_vec() {
            return Ok(CheckResult { allowed: true, grant_id: 0, reason: "owner".into(), checked_at_ms: now });
        }
        let ids = BY_PARTICIPANT.get_or_default(&(args.device.clone(), participant))?;
        let mut reason = String::from("no grant for this participant");
        for id in ids.ids {
            let Some(g) = GRANTS.get(&id)? else { continue };
            match refusal(&g, &args.action, now) {
                None => return Ok(CheckResult { allowed: true, grant_id: g.id, reason: String::new(), checked_at_ms: now }),
                Some(why) => reason = why,
            }
        }
        Ok(CheckResult { allowed: false, grant_id: 0, reason, checked_at_ms: now })
    }

    /// A device with its owner and controllers.
    fn device(args: DeviceArgs) -> Result<Device> {
        load_device(&args.device)
    }

    /// A device's grants and revocations, oldest first.
    fn history(args: HistoryArgs) -> Result<History> {
        load_device(&args.device)?;
        let total = HISTORY_LEN.get_or_default(args.device.as_str())?;
        let limit = match args.limit { 0 => 50, l => l.min(200) } as u64;
        let mut entries = Vec::new();
        let mut i = u64::from(args.offset);
        while i < total && (entries.len() as u64) < limit {
            entries.extend(HISTORY.get(&(args.device.clone(), i))?);
            i += 1;
        }
        Ok(History { entries, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_sdk::{testing, ErrorKind};

    const OWNER: Address = Address([1; 20]);
    const CONTROLLER: Address = Address([2; 20]);
    const TENANT: Address = Address([3; 20]);

    fn setup() {
        testing::reset();
        testing::set_block(1, 1_000);
        testing::set_caller(OWNER);
        register(RegisterArgs {
            device: "door-1".into(),
        })
        .expect("register");
        add_controller(ControllerArgs {
            device: "door-1".into(),
            controller: CONTROLLER.to_vec(),
        })
        .expect("controller");
    }

    fn can(action: &str) -> bool {
        check(CheckArgs {
            device: "door-1".into(),
            participant: TENANT.to_vec(),
            action: action.into(),
        })
        .expect("check")
        .allowed
    }

    #[test]
    fn grant_check_revoke_expire_and_history() {
        setup();
        testing::set_caller(CONTROLLER);
        let g = grant(GrantArgs {
            device: "door-1".into(),
            participant: TENANT.to_vec(),
            scope: vec!["unlock".into()],
            expires_at_ms: 5_000,
            grantor_data: b"agency 7".to_vec(),
        })
        .expect("grant");
        assert!(can("unlock"));
        assert!(!can("configure"));
        let wrong = revoke(RevokeArgs {
            grant_id: g.id,
            grant_data: b"other".to_vec(),
        });
        assert_eq!(
            wrong.expect_err("no correspondence").kind,
            ErrorKind::BadInput
        );
        revoke(RevokeArgs {
            grant_id: g.id,
            grant_data: b"agency 7".to_vec(),
        })
        .expect("revoke");
        assert!(!can("unlock"));
        let h = history(HistoryArgs {
            device: "door-1".into(),
            offset: 0,
            limit: 0,
        })
        .expect("history");
        let kinds: Vec<&str> = h.entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, vec!["grant", "revoke"]);

        let g2 = grant(GrantArgs {
            device: "door-1".into(),
            participant: TENANT.to_vec(),
            scope: vec!["*".into()],
            expires_at_ms: 2_000,
            grantor_data: vec![],
        })
        .expect("grant");
        assert!(can("configure"));
        testing::set_block(2, 2_000);
        assert!(!can("configure"), "expired");
        assert!(g2.id > g.id);
    }

    #[test]
    fn only_owner_or_controller_grants() {
        setup();
        testing::set_caller(TENANT);
        let err = grant(GrantArgs {
            device: "door-1".into(),
            participant: TENANT.to_vec(),
            scope: vec!["unlock".into()],
            expires_at_ms: 0,
            grantor_data: vec![],
        })
        .expect_err("not allowed");
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
    }
}
