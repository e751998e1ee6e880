#![no_main]
//! Fuzz target: `quorate_node::fuzz_targets::transaction`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| quorate_node::fuzz_targets::transaction(data));
