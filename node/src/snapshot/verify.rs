//! Checking a snapshot received from anywhere: the manifest against the chain, each chunk
//! against the manifest.

use prost::Message;
use quorate_proto::certificate::{follow_set_changes, verify_certificate, ValidatorSet};
use quorate_proto::crypto::Hash32;
use quorate_proto::v1::{BlockHeader, SnapshotChunk, SnapshotManifest, StateKind};

use super::format::{SnapshotError, FORMAT, MAX_CHUNKS, MAX_CHUNK_BYTES};
use crate::state_root::LtHash;
use crate::storage::{add_to_lthash, check_entry_shape};

/// A manifest whose header is proven final and whose chunks sum to that header's state root.
#[derive(Clone, Debug)]
pub struct VerifiedManifest {
    /// The manifest.
    pub manifest: SnapshotManifest,
    /// Its decoded header.
    pub header: BlockHeader,
    /// The header's hash.
    pub block_hash: Hash32,
    /// The accumulator of each chunk.
    pub chunk_lthashes: Vec<LtHash>,
    /// Their sum: the accumulator of the whole state.
    pub lthash: LtHash,
    /// The validator set in force at the snapshot's height (proven from genesis by the set
    /// changes the manifest carries).
    pub validators: ValidatorSet,
}

/// What an operator trusts about a chain before joining it (issue 25; CometBFT's state sync
/// asks for a trusted height and hash the same way): the hash of the validator set deciding
/// `height`, read from a node it trusts (`quorate validators --height H --json`, `set_hash`).
/// A snapshot is taken only if it is at `height` or later and the set changes it carries prove
/// that set there: keys of a past quorum (a retired dev key, keys replaced after a compromise)
/// can forge a history up to the point where they were in force, but not past the anchor,
/// whose set never signed their headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustAnchor {
    /// The trusted height.
    pub height: u64,
    /// Hash of the validator set deciding it.
    pub validators_hash: Hash32,
}

impl std::str::FromStr for TrustAnchor {
    type Err = String;

    /// `HEIGHT:SET_HASH` (the hash in hex).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (h, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected HEIGHT:SET_HASH"))?;
        let height = h
            .parse::<u64>()
            .ok()
            .filter(|h| *h > 0)
            .ok_or_else(|| format!("{h:?} is not a height above 0"))?;
        let validators_hash =
            Hash32::from_hex(hash).map_err(|_| format!("{hash:?} is not a 32-byte hash in hex"))?;
        Ok(Self {
            height,
            validators_hash,
        })
    }
}

impl VerifiedManifest {
    /// Whether this snapshot descends from `anchor`: at its height or later, with set changes
    /// that prove the anchor's set there.
    pub fn check_anchor(
        &self,
        genesis_set: &ValidatorSet,
        anchor: &TrustAnchor,
    ) -> Result<(), SnapshotError> {
        if self.height() < anchor.height {
            return Err(SnapshotError::Untrusted(format!(
                "the snapshot is of height {}, below the trusted height {}",
                self.height(),
                anchor.height
            )));
        }
        // The changes were checked when the manifest was.
        let set = checked_set_at(genesis_set, &self.manifest.set_changes, anchor.height)?;
        if set.hash() != anchor.validators_hash {
            return Err(SnapshotError::Untrusted(format!(
                "its set changes prove set {} at the trusted height {}, not the trusted {}",
                set.hash(),
                anchor.height,
                anchor.validators_hash
            )));
        }
        Ok(())
    }
}

/// What makes two manifests the same snapshot, whichever validator serves it: everything but
/// the certificates, which each validator holds its own of (the top one, and those of the set
/// changes: issue 25, honest manifests of one height after a set change all differed, so no
/// snapshot was ever offered by f + 1 validators).
pub fn manifest_identity(manifest: &SnapshotManifest) -> Hash32 {
    let mut m = manifest.clone();
    m.certificate = None;
    for c in &mut m.set_changes {
        c.certificate = None;
    }
    Hash32::of(&m.encode_to_vec())
}

/// Most validator set changes a manifest may carry (each is a header, a certificate and a set).
pub const MAX_SET_CHANGES: usize = 10_000;

/// The set in force at `height` by `changes` (oldest first), which `follow_set_changes` has
/// checked already: the set of the last change at or below `height`, else the genesis set.
fn checked_set_at(
    genesis: &ValidatorSet,
    changes: &[quorate_proto::v1::ValidatorSetChange],
    height: u64,
) -> Result<ValidatorSet, SnapshotError> {
    match changes.iter().take_while(|c| c.height <= height).last() {
        None => Ok(genesis.clone()),
        Some(c) => Ok(ValidatorSet::from_entries(&c.validators)?),
    }
}

fn bad(reason: impl Into<String>) -> SnapshotError {
    SnapshotError::BadManifest(reason.into())
}

/// Checks `manifest` for the chain `chain_id` with `genesis_hash`, whose genesis validators
/// are `genesis_set`: format, chain, header, the set changes it carries (each certified by the
/// set before it, from genesis), the certificate against the set so proven in force at the
/// snapshot's height, chunk list, and the chunks' accumulators summing to the header's state
/// root.
pub fn verify_manifest(
    manifest: SnapshotManifest,
    chain_id: &str,
    genesis_hash: &Hash32,
    genesis_set: &ValidatorSet,
) -> Result<VerifiedManifest, SnapshotError> {
    if manifest.format != FORMAT {
        return Err(SnapshotError::Format(manifest.format));
    }
    if manifest.chain_id != chain_id || manifest.genesis_hash.as_ref() != genesis_hash.0 {
        return Err(SnapshotError::WrongChain {
            chain: manifest.chain_id.clone(),
            genesis: hex::encode(&manifest.genesis_hash),
            expected_chain: chain_id.to_owned(),
            expected_genesis: genesis_hash.to_hex(),
        });
    }
    let header = BlockHeader::decode(manifest.header.clone())
        .map_err(|e| bad(format!("header does not decode: {e}")))?;
    if header.height != manifest.height || header.height == 0 {
        return Err(bad(format!(
            "header height {} for a snapshot of height {}",
            header.height, manifest.height
        )));
    }
    let block_hash = Hash32::of(&manifest.header);
    // Every change carried must hold (they are recorded with the imported state), and the
    // certificate is checked against the set in force at the snapshot's height.
    if manifest.set_changes.len() > MAX_SET_CHANGES
        || manifest
            .set_changes
            .iter()
            .any(|c| c.height > manifest.height + 1)
    {
        return Err(bad(format!(
            "{} validator set changes, or one above height {}",
            manifest.set_changes.len(),
            manifest.height + 1
        )));
    }
    // Every certificate once (up to 10,000 changes of up to 64 signatures: the walk is
    // costly); the sets at given heights are then read off the checked list.
    follow_set_changes(chain_id, genesis_set, &manifest.set_changes, u64::MAX)?;
    let validators = checked_set_at(genesis_set, &manifest.set_changes, manifest.height)?;
    let certificate = manifest
        .certificate
        .as_ref()
        .ok_or_else(|| bad("no certificate"))?;
    verify_certificate(
        certificate,
        chain_id,
        &validators,
        manifest.height,
        &block_hash,
    )
    .map_err(|source| SnapshotError::Certificate {
        height: manifest.height,
        source,
    })?;
    // The changes carried must be all of them (issue 25): the set they prove for the next
    // height is the one the certified header names. A change dropped from the end of the list
    // (whose proof the set before it signs) no longer passes unseen.
    let next = checked_set_at(genesis_set, &manifest.set_changes, manifest.height + 1)?;
    if header.next_validators_hash.as_ref() != next.hash().0 {
        return Err(bad(format!(
            "the set changes carried prove set {} for height {}, but the certified header names {}: a change is missing",
            next.hash(),
            manifest.height + 1,
            hex::encode(&header.next_validators_hash)
        )));
    }
    if manifest.chunks.is_empty() || manifest.chunks.len() > MAX_CHUNKS {
        return Err(bad(format!(
            "{} chunks (1 to {MAX_CHUNKS} allowed)",
            manifest.chunks.len()
        )));
    }
    let mut lthash = LtHash::default();
    let mut chunk_lthashes = Vec::with_capacity(manifest.chunks.len());
    for (i, c) in manifest.chunks.iter().enumerate() {
        let l = LtHash::from_bytes(&c.lthash).ok_or_else(|| {
            bad(format!(
                "chunk {i}: accumulator of {} bytes",
                c.lthash.len()
            ))
        })?;
        if c.digest.len() != 32 || c.size == 0 || c.size > MAX_CHUNK_BYTES {
            return Err(bad(format!(
                "chunk {i}: digest of {} bytes, size {}",
                c.digest.len(),
                c.size
            )));
        }
        lthash.add(&l);
        chunk_lthashes.push(l);
    }
    let header_root = Hash32::from_slice(&header.state_root)
        .ok_or_else(|| bad("header state root is not 32 bytes"))?;
    if lthash.root() != header_root {
        return Err(SnapshotError::RootMismatch {
            height: manifest.height,
            sum: lthash.root().to_hex(),
            header: header_root.to_hex(),
        });
    }
    Ok(VerifiedManifest {
        manifest,
        header,
        block_hash,
        chunk_lthashes,
        lthash,
        validators,
    })
}

impl VerifiedManifest {
    /// The snapshot's height.
    pub fn height(&self) -> u64 {
        self.manifest.height
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.manifest.chunks.len()
    }

    /// Checks the encoded chunk `index` against the manifest (size, digest, its place, the
    /// order of its entries, its accumulator) and decodes it.
    pub fn verify_chunk(&self, index: u32, bytes: &[u8]) -> Result<SnapshotChunk, SnapshotError> {
        let bad = |reason: String| SnapshotError::BadChunk { index, reason };
        let info = self
            .manifest
            .chunks
            .get(index as usize)
            .ok_or_else(|| bad(format!("the manifest lists {} chunks", self.chunk_count())))?;
        if bytes.len() as u64 != info.size {
            return Err(bad(format!(
                "{} bytes, the manifest says {}",
                bytes.len(),
                info.size
            )));
        }
        let digest = Hash32::of(bytes);
        if digest.0 != info.digest.as_ref() {
            return Err(bad(format!(
                "digest {digest}, the manifest says {}",
                hex::encode(&info.digest)
            )));
        }
        let chunk =
            SnapshotChunk::decode(bytes).map_err(|e| bad(format!("does not decode: {e}")))?;
        if chunk.height != self.height() || chunk.index != index {
            return Err(bad(format!(
                "it is chunk {} of height {}",
                chunk.index, chunk.height
            )));
        }
        if chunk.entries.len() != info.entries as usize || chunk.code.len() != info.codes as usize {
            return Err(bad("entry or code count differs from the manifest".into()));
        }
        let mut lthash = LtHash::default();
        let mut last: Option<(i32, &[u8])> = None;
        for e in &chunk.entries {
            let kind = StateKind::try_from(e.kind)
                .map_err(|_| bad(format!("unknown entry kind {}", e.kind)))?;
            let at = (e.kind, e.key.as_ref());
            if last.is_some_and(|l| l >= at) {
                return Err(bad("entries out of order or repeated".into()));
            }
            last = Some(at);
            check_entry_shape(kind, &e.key, &e.value)
                .map_err(|why| bad(format!("a {kind:?} entry: {why}")))?;
            add_to_lthash(&mut lthash, kind, &e.key, &e.value);
        }
        if lthash != self.chunk_lthashes[index as usize] {
            return Err(bad(format!(
                "its entries hash to {}, the manifest says {}",
                lthash.root(),
                self.chunk_lthashes[index as usize].root()
            )));
        }
        Ok(chunk)
    }
}
