//! The host functions of the ABI (module `quorate`). Every call charges fuel before it does
//! anything; pointers are checked against the caller's linear memory; lengths against the
//! limits.

use quorate_proto::crypto::{Address, ADDRESS_LEN};
use wasmtime::{Caller, Linker, Trap};

use crate::abi::{AbortKind, IMPORT_MODULE};
use crate::backend::Backend;
use crate::runtime::{classify, fail, fatal, invoke, Ctx, Failure, HostFault};

type Cx<'a, B> = Caller<'a, Ctx<B>>;

/// Takes `amount` fuel, or fails the call with out-of-fuel.
fn charge<B: Backend>(cx: &mut Cx<'_, B>, amount: u64) -> wasmtime::Result<()> {
    let fuel = cx.get_fuel()?;
    if fuel < amount {
        cx.set_fuel(0)?;
        return Err(wasmtime::Error::new(Trap::OutOfFuel));
    }
    cx.set_fuel(fuel - amount)
}

fn misuse(msg: String) -> wasmtime::Error {
    fail(Failure::Trap(msg))
}

fn denied_in_query(what: &str) -> wasmtime::Error {
    fail(Failure::PermissionDenied(format!(
        "a read-only query cannot {what}"
    )))
}

/// Copies `len` bytes at `ptr` out of linear memory, charging per byte.
fn read<B: Backend>(
    cx: &mut Cx<'_, B>,
    ptr: i32,
    len: i32,
    max: usize,
    what: &str,
) -> wasmtime::Result<Vec<u8>> {
    let len = len as u32 as usize;
    if len > max {
        return Err(misuse(format!(
            "{what} of {len} bytes exceeds the {max}-byte limit"
        )));
    }
    charge(cx, cx.data().shared.config.fuel.per_byte * len as u64)?;
    let memory = cx.data().frame().memory;
    let start = ptr as u32 as usize;
    memory
        .data(&cx)
        .get(start..start + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| misuse(format!("{what} at {start}+{len} is outside linear memory")))
}

/// Copies `bytes` into linear memory at `ptr`, charging per byte.
fn write<B: Backend>(cx: &mut Cx<'_, B>, ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    charge(
        cx,
        cx.data().shared.config.fuel.per_byte * bytes.len() as u64,
    )?;
    let memory = cx.data().frame().memory;
    let start = ptr as u32 as usize;
    let end = start + bytes.len();
    memory
        .data_mut(&mut *cx)
        .get_mut(start..end)
        .ok_or_else(|| {
            misuse(format!(
                "output at {start}+{} is outside linear memory",
                bytes.len()
            ))
        })?
        .copy_from_slice(bytes);
    Ok(())
}

fn read_address<B: Backend>(cx: &mut Cx<'_, B>, ptr: i32) -> wasmtime::Result<Address> {
    let bytes = read(cx, ptr, ADDRESS_LEN as i32, ADDRESS_LEN, "address")?;
    Address::from_slice(&bytes).map_err(|e| misuse(e.to_string()))
}

fn read_text<B: Backend>(
    cx: &mut Cx<'_, B>,
    ptr: i32,
    len: i32,
    max: usize,
    what: &str,
) -> wasmtime::Result<String> {
    String::from_utf8(read(cx, ptr, len, max, what)?)
        .map_err(|_| misuse(format!("{what} is not UTF-8")))
}

/// Charges the base cost of a host call plus `extra`.
fn enter<B: Backend>(cx: &mut Cx<'_, B>, extra: u64) -> wasmtime::Result<()> {
    let base = cx.data().shared.config.fuel.host_call;
    charge(cx, base + extra)
}

/// Defines every host function of the ABI in `linker`.
pub(crate) fn define<B: Backend>(linker: &mut Linker<Ctx<B>>) -> wasmtime::Result<()> {
    let m = IMPORT_MODULE;
    linker.func_wrap(m, "input_len", |mut cx: Cx<'_, B>| {
        enter(&mut cx, 0)?;
        Ok(cx.data().frame().input.len() as i32)
    })?;
    linker.func_wrap(m, "input_read", |mut cx: Cx<'_, B>, ptr: i32| {
        enter(&mut cx, 0)?;
        let input = std::mem::take(&mut cx.data_mut().frame_mut().input);
        let r = write(&mut cx, ptr, &input);
        cx.data_mut().frame_mut().input = input;
        r
    })?;
    linker.func_wrap(m, "scratch_len", |mut cx: Cx<'_, B>| {
        enter(&mut cx, 0)?;
        Ok(cx.data().scratch.len() as i32)
    })?;
    linker.func_wrap(m, "scratch_read", |mut cx: Cx<'_, B>, ptr: i32| {
        enter(&mut cx, 0)?;
        let scratch = std::mem::take(&mut cx.data_mut().scratch);
        let r = write(&mut cx, ptr, &scratch);
        cx.data_mut().scratch = scratch;
        r
    })?;
    linker.func_wrap(m, "set_return", |mut cx: Cx<'_, B>, ptr: i32, len: i32| {
        enter(&mut cx, 0)?;
        let max = cx.data().shared.config.limits.max_io_bytes;
        let out = read(&mut cx, ptr, len, max, "return data")?;
        cx.data_mut().frame_mut().output = out;
        Ok(())
    })?;
    linker.func_wrap(
        m,
        "abort",
        |mut cx: Cx<'_, B>, kind: i32, ptr: i32, len: i32| -> wasmtime::Result<()> {
            enter(&mut cx, 0)?;
            let msg = read(&mut cx, ptr, len, 4096, "abort message")?;
            let msg = String::from_utf8_lossy(&msg).into_owned();
            Err(fail(match AbortKind::from_code(kind) {
                AbortKind::Failed => Failure::Aborted(msg),
                AbortKind::BadInput => Failure::BadInput(msg),
                AbortKind::PermissionDenied => Failure::PermissionDenied(msg),
            }))
        },
    )?;
    linker.func_wrap(
        m,
        "storage_get",
        |mut cx: Cx<'_, B>, kptr: i32, klen: i32| {
            let cost = cx.data().shared.config.fuel.storage_read;
            enter(&mut cx, cost)?;
            let max = cx.data().shared.config.limits.max_key_bytes;
            let key = read(&mut cx, kptr, klen, max, "storage key")?;
            let contract = cx.data().frame().contract;
            let value = cx
                .data_mut()
                .backend
                .storage_get(&contract, &key)
                .map_err(fatal)?;
            Ok(match value {
                Some(v) => {
                    cx.data_mut().scratch = v;
                    1i32
                }
                None => {
                    cx.data_mut().scratch.clear();
                    0
                }
            })
        },
    )?;
    linker.func_wrap(
        m,
        "storage_set",
        |mut cx: Cx<'_, B>, kptr: i32, klen: i32, vptr: i32, vlen: i32| {
            if cx.data().read_only {
                return Err(denied_in_query("write storage"));
            }
            let costs = &cx.data().shared.config.fuel;
            let cost = costs.storage_write
                + costs.storage_write_per_byte * (klen as u32 as u64 + vlen as u32 as u64);
            enter(&mut cx, cost)?;
            let limits = &cx.data().shared.config.limits;
            let (kmax, vmax) = (limits.max_key_bytes, limits.max_value_bytes);
            let key = read(&mut cx, kptr, klen, kmax, "storage key")?;
            let value = read(&mut cx, vptr, vlen, vmax, "storage value")?;
            let contract = cx.data().frame().contract;
            cx.data_mut()
                .backend
                .storage_set(&contract, &key, Some(&value))
                .map_err(fatal)?;
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "storage_remove",
        |mut cx: Cx<'_, B>, kptr: i32, klen: i32| {
            if cx.data().read_only {
                return Err(denied_in_query("write storage"));
            }
            let cost = cx.data().shared.config.fuel.storage_write;
            enter(&mut cx, cost)?;
            let max = cx.data().shared.config.limits.max_key_bytes;
            let key = read(&mut cx, kptr, klen, max, "storage key")?;
            let contract = cx.data().frame().contract;
            let existed = cx
                .data_mut()
                .backend
                .storage_set(&contract, &key, None)
                .map_err(fatal)?;
            Ok(i32::from(existed))
        },
    )?;
    linker.func_wrap(m, "caller", |mut cx: Cx<'_, B>, ptr: i32| {
        enter(&mut cx, 0)?;
        let a = cx.data().frame().caller;
        write(&mut cx, ptr, &a.0)
    })?;
    linker.func_wrap(m, "origin", |mut cx: Cx<'_, B>, ptr: i32| {
        enter(&mut cx, 0)?;
        let a = cx.data().origin;
        write(&mut cx, ptr, &a.0)
    })?;
    linker.func_wrap(m, "self_address", |mut cx: Cx<'_, B>, ptr: i32| {
        enter(&mut cx, 0)?;
        let a = cx.data().frame().contract;
        write(&mut cx, ptr, &a.0)
    })?;
    linker.func_wrap(m, "value", |mut cx: Cx<'_, B>| {
        enter(&mut cx, 0)?;
        Ok(cx.data().frame().value as i64)
    })?;
    linker.func_wrap(m, "block_height", |mut cx: Cx<'_, B>| {
        enter(&mut cx, 0)?;
        Ok(cx.data().env.height as i64)
    })?;
    linker.func_wrap(m, "block_time_ms", |mut cx: Cx<'_, B>| {
        enter(&mut cx, 0)?;
        Ok(cx.data().env.time_ms as i64)
    })?;
    linker.func_wrap(m, "new_id", |mut cx: Cx<'_, B>| {
        enter(&mut cx, 0)?;
        let ctx = cx.data_mut();
        let id = crate::abi::new_id(ctx.env.height, ctx.env.tx_index, ctx.ids)
            .map_err(|why| misuse(why.to_owned()))?;
        ctx.ids += 1;
        Ok(id as i64)
    })?;
    linker.func_wrap(m, "balance", |mut cx: Cx<'_, B>, ptr: i32| {
        let cost = cx.data().shared.config.fuel.balance;
        enter(&mut cx, cost)?;
        let addr = read_address(&mut cx, ptr)?;
        let b = cx.data_mut().backend.balance(&addr).map_err(fatal)?;
        Ok(b as i64)
    })?;
    linker.func_wrap(
        m,
        "key_acts_for",
        |mut cx: Cx<'_, B>, aptr: i32, kptr: i32| {
            // Two state reads (the account, its key set) and a small decode.
            let cost = cx.data().shared.config.fuel.balance * 2;
            enter(&mut cx, cost)?;
            let account = read_address(&mut cx, aptr)?;
            let key: [u8; 32] = read(&mut cx, kptr, 32, 32, "public key")?
                .try_into()
                .map_err(|_| misuse("a public key is 32 bytes".to_owned()))?;
            let acts = cx
                .data_mut()
                .backend
                .key_acts_for(&account, &key)
                .map_err(fatal)?;
            Ok(i32::from(acts))
        },
    )?;
    linker.func_wrap(m, "transfer", |mut cx: Cx<'_, B>, ptr: i32, amount: i64| {
        if cx.data().read_only {
            return Err(denied_in_query("transfer tokens"));
        }
        let cost = cx.data().shared.config.fuel.balance;
        enter(&mut cx, cost)?;
        let to = read_address(&mut cx, ptr)?;
        let from = cx.data().frame().contract;
        let moved = cx
            .data_mut()
            .backend
            .transfer(&from, &to, amount as u64)
            .map_err(fatal)?;
        Ok(if moved { 0i32 } else { 1 })
    })?;
    linker.func_wrap(
        m,
        "emit_event",
        |mut cx: Cx<'_, B>, kptr: i32, klen: i32, dptr: i32, dlen: i32| {
            if cx.data().read_only {
                return Err(denied_in_query("emit events"));
            }
            let cost = cx.data().shared.config.fuel.event;
            enter(&mut cx, cost)?;
            let limits = &cx.data().shared.config.limits;
            let (kmax, dmax, count) = (
                limits.max_event_kind_bytes,
                limits.max_event_data_bytes,
                limits.max_events_per_tx,
            );
            if cx.data().events.len() >= count {
                return Err(misuse(format!(
                    "a transaction may emit at most {count} events"
                )));
            }
            let kind = read_text(&mut cx, kptr, klen, kmax, "event kind")?;
            let data = read(&mut cx, dptr, dlen, dmax, "event data")?;
            let contract = cx.data().frame().contract;
            cx.data_mut().events.push(crate::runtime::ContractEvent {
                contract,
                kind,
                data,
            });
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "blake3",
        |mut cx: Cx<'_, B>, ptr: i32, len: i32, out: i32| {
            let costs = &cx.data().shared.config.fuel;
            let cost = costs.hash + costs.hash_per_byte * len as u32 as u64;
            enter(&mut cx, cost)?;
            let max = cx.data().shared.config.limits.max_io_bytes;
            let data = read(&mut cx, ptr, len, max, "hash input")?;
            let digest = blake3::hash(&data);
            write(&mut cx, out, digest.as_bytes())
        },
    )?;
    linker.func_wrap(
        m,
        "call",
        |mut cx: Cx<'_, B>,
         aptr: i32,
         mptr: i32,
         mlen: i32,
         iptr: i32,
         ilen: i32,
         value: i64|
         -> wasmtime::Result<i32> {
            let cost = cx.data().shared.config.fuel.call;
            enter(&mut cx, cost)?;
            let limits = &cx.data().shared.config.limits;
            let (mmax, imax, max_memory) = (
                limits.max_method_bytes,
                limits.max_io_bytes,
                limits.max_memory_bytes,
            );
            let target = read_address(&mut cx, aptr)?;
            let method = read_text(&mut cx, mptr, mlen, mmax, "method name")?;
            let input = read(&mut cx, iptr, ilen, imax, "call input")?;
            let me = cx.data().frame().contract;
            let checkpoint = cx.data_mut().backend.checkpoint();
            let events = cx.data().events.len();
            let denied = cx.data().limiter.memory_denied;
            match invoke(&mut cx, target, me, &method, input, value as u64, false) {
                Ok(output) => {
                    cx.data_mut().scratch = output;
                    Ok(0)
                }
                Err(e) => match classify(e, cx.data().limiter.memory_denied, max_memory) {
                    Err(node_failure) => Err(wasmtime::Error::new(HostFault::Fatal(node_failure))),
                    // Fuel is shared: with none left the caller cannot go on either.
                    Ok(Failure::OutOfFuel) => Err(wasmtime::Error::new(Trap::OutOfFuel)),
                    Ok(failure) => {
                        let ctx = cx.data_mut();
                        ctx.backend.revert_to(checkpoint);
                        ctx.events.truncate(events);
                        ctx.limiter.memory_denied = denied;
                        ctx.scratch = failure.to_string().into_bytes();
                        Ok(1)
                    }
                },
            }
        },
    )?;
    Ok(())
}
