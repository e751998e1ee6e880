//! A short, seeded run of every decoder fuzz target on stable (libFuzzer runs long campaigns
//! from `fuzz/`, see docs/RELIABILITY.md): each input of the kept corpus `fuzz/corpus/<target>`,
//! then seeded mutations of it (bit flips, truncations, splices, random bytes). Any panic is a
//! bug; a crash found by libFuzzer goes into the corpus, so it is replayed here for good.
//!
//! `QUORATE_FUZZ_RUNS=N` sets the mutations per target (default 2,000).

use std::path::{Path, PathBuf};

use quorate_node::fuzz_targets::{seeds, TARGETS};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(corpus_dir(target)) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if let Ok(bytes) = std::fs::read(&p) {
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
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                let n = rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, bytes);
            }
            4 if !other.is_empty() => {
                let i = rng.below(v.len() + 1);
                let from = rng.below(other.len());
                let to = from + rng.below(other.len() - from + 1);
                v.splice(i..i, other[from..to].iter().copied());
            }
            _ => {
                let i = rng.below(v.len() + 1);
                v.truncate(i);
                v.extend((0..rng.below(32)).map(|_| rng.next() as u8));
            }
        }
    }
    v
}

#[test]
fn every_decoder_survives_its_corpus_and_seeded_mutations() {
    let runs: usize = std::env::var("QUORATE_FUZZ_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        assert!(
            !inputs.is_empty(),
            "no corpus for {name} in {:?}",
            corpus_dir(name)
        );
        for input in &inputs {
            target(input);
        }
        let mut rng = Rng(0x51ed_2701_u64 ^ name.len() as u64);
        for i in 0..runs {
            let a = &inputs[i % inputs.len()];
            let b = &inputs[rng.below(inputs.len())];
            target(&mutate(&mut rng, a, b));
        }
        println!("{name}: {} corpus inputs, {runs} mutations", inputs.len());
    }
}

/// Writes the seed inputs into `fuzz/corpus/<target>/seed-*` (run by hand with `--ignored`
/// when a target or a wire format changes).
#[test]
#[ignore]
fn write_seed_corpus() {
    for (i, (name, bytes)) in seeds().into_iter().enumerate() {
        let dir = corpus_dir(name);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{i}")), bytes).expect("write seed");
    }
}
