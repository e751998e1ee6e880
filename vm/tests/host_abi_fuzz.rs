//! A short, seeded run of the host-ABI fuzz target on stable (libFuzzer runs long ones from
//! `fuzz/`): the kept corpus, then random programs of host calls with random arguments.

use quorate_vm::fuzzing::host_abi;

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/host_abi");
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if let Ok(bytes) = std::fs::read(e.path()) {
                out.push(bytes);
            }
        }
    }
    out
}

/// xorshift64*: a seeded stream without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn host_calls_with_any_arguments_fail_cleanly() {
    for program in corpus() {
        host_abi(&program);
    }
    let runs: u64 = std::env::var("QUORATE_FUZZ_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..runs {
        let calls = (rng.next() % 8) as usize;
        let mut program = Vec::with_capacity(calls * 17);
        for _ in 0..calls {
            program.push((rng.next() % 20) as u8);
            for _ in 0..4 {
                // Mostly small, in-memory pointers and lengths; sometimes anything.
                let v = match rng.next() % 4 {
                    0 => rng.next() as u32,
                    1 => (rng.next() % 64) as u32,
                    _ => (rng.next() % 140_000) as u32,
                };
                program.extend_from_slice(&v.to_le_bytes());
            }
        }
        host_abi(&program);
    }
}
