#![no_main]
//! Fuzz target: `quorate_vm::fuzzing::host_abi` (a contract making arbitrary host calls).

libfuzzer_sys::fuzz_target!(|data: &[u8]| quorate_vm::fuzzing::host_abi(data));
