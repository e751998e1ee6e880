// Checking what a node says against the genesis file, on the client's side: a block is final
// when a quorum (2n/3 + 1) of the validator set in force at its height signed it; that set is
// proven from the genesis set by set changes, each certified by the set before it. A
// transaction is in a block when its leaf is among those whose Merkle root the header carries.
import { equals, fromBinary } from "@bufbuild/protobuf";
import { blake3 } from "@noble/hashes/blake3.js";

import { bigEndian, concat, equal, fromHex, toHex, utf8 } from "./bytes.js";
import { VerifyError } from "./errors.js";
import { verifySignature } from "./keys.js";
import { leaf, txHash } from "./tx.js";
import type { QuorateNode } from "./node.js";
import type { BlockInfo } from "./gen/quorate/v1/node_pb.js";
import { BlockHeaderSchema, type BlockHeader, type CommitCertificate, type ValidatorSetChange } from "./gen/quorate/v1/types_pb.js";

const COMMIT_SIGN_DOMAIN = utf8("quorate/v1/commit\0");
const VALIDATOR_SET_DOMAIN = utf8("quorate/v1/validators\0");
const MAX_VALIDATORS = 64;

/** blake3(domain ‖ count (u32 BE) ‖ each key in index order). */
export function validatorSetHash(keys: Uint8Array[]): Uint8Array {
  return blake3(concat(VALIDATOR_SET_DOMAIN, bigEndian(keys.length, 4), ...keys));
}

/** Signatures a certificate needs from a set of `n`. */
export function quorum(n: number): number {
  return Math.floor((n * 2) / 3) + 1;
}

/** What a validator signs to commit `blockHash` at `height` and `round`. */
export function commitMessage(chainId: string, height: bigint, round: number, blockHash: Uint8Array): Uint8Array {
  const id = utf8(chainId);
  return concat(COMMIT_SIGN_DOMAIN, bigEndian(id.length, 2), id, bigEndian(height, 8), bigEndian(round, 4), blockHash);
}

/** The Merkle root of `leaves`: leaves as blake3(0x00 ‖ leaf), nodes as blake3(0x01 ‖ l ‖ r),
 * an odd node carried up, the empty list's root blake3("quorate/v1/merkle-empty"). */
export function merkleRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return blake3(utf8("quorate/v1/merkle-empty"));
  let level: Uint8Array[] = leaves.map((l) => blake3(concat(new Uint8Array([0]), l)));
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? blake3(concat(new Uint8Array([1]), level[i], level[i + 1])) : level[i]);
    }
    level = next;
  }
  return level[0];
}

/** Throws VerifyError unless `cert` carries a quorum of valid, distinct signatures of `keys`
 * (the set in force at `height`) over `blockHash`. */
export function verifyCertificate(cert: CommitCertificate, chainId: string, keys: Uint8Array[], height: bigint, blockHash: Uint8Array): void {
  if (cert.height !== height || !equal(cert.blockHash, blockHash)) {
    throw new VerifyError("wrong_block", `certificate of height ${cert.height} block ${toHex(cert.blockHash)}, expected ${height} ${toHex(blockHash)}`);
  }
  const seen = new Set<number>();
  for (const s of cert.signatures) {
    if (s.validatorIndex >= keys.length) throw new VerifyError("unknown_validator", `validator index ${s.validatorIndex} is outside the set of ${keys.length}`);
    if (seen.has(s.validatorIndex)) throw new VerifyError("duplicate_validator", `validator ${s.validatorIndex} twice`);
    seen.add(s.validatorIndex);
  }
  const message = commitMessage(chainId, cert.height, cert.round, blockHash);
  for (const s of cert.signatures) {
    if (!verifySignature(keys[s.validatorIndex], message, s.signature)) {
      throw new VerifyError("bad_signature", `signature of validator ${s.validatorIndex} does not verify`);
    }
  }
  if (cert.signatures.length < quorum(keys.length)) {
    throw new VerifyError("no_quorum", `${cert.signatures.length} signatures; ${quorum(keys.length)} of ${keys.length} validators needed`);
  }
}

function setOf(entries: { publicKey: Uint8Array }[]): Uint8Array[] {
  const keys = entries.map((e) => e.publicKey);
  if (keys.length < 1 || keys.length > MAX_VALIDATORS) throw new VerifyError("set_change", `a validator set of ${keys.length}`);
  if (keys.some((k) => k.length !== 32) || new Set(keys.map(toHex)).size !== keys.length) {
    throw new VerifyError("set_change", "a set with a malformed or repeated key");
  }
  return keys;
}

/** The set in force at `height`, followed from the genesis set through `changes` (oldest
 * first): each proven by the header of the height before it, certified by the set in force
 * there, naming the new set's hash. */
export function followSetChanges(chainId: string, genesisKeys: Uint8Array[], changes: ValidatorSetChange[], height: bigint): Uint8Array[] {
  let keys = genesisKeys;
  let previous = 1n;
  for (const change of changes) {
    if (change.height > height) break;
    const h = change.height;
    if (h <= previous) throw new VerifyError("set_change", `change at ${h} does not follow the one at ${previous}`);
    const header = fromBinary(BlockHeaderSchema, change.header);
    if (header.height !== h - 1n || header.chainId !== chainId) {
      throw new VerifyError("set_change", `change at ${h}: header of height ${header.height} on chain ${JSON.stringify(header.chainId)}`);
    }
    if (!change.certificate) throw new VerifyError("set_change", `change at ${h}: no certificate`);
    try {
      verifyCertificate(change.certificate, chainId, keys, h - 1n, blake3(change.header));
    } catch (e) {
      throw new VerifyError("set_change", `change at ${h}: certificate: ${(e as Error).message}`);
    }
    const next = setOf(change.validators);
    if (!equal(validatorSetHash(next), header.nextValidatorsHash)) {
      throw new VerifyError("set_change", `change at ${h}: the header names another set than the change carries`);
    }
    keys = next;
    previous = h;
  }
  return keys;
}

/** A block whose certificate holds: its header decoded from the certified bytes (never the
 * node's own decoding) and who signed it. */
export interface VerifiedBlock {
  hash: Uint8Array;
  header: BlockHeader;
  signers: Uint8Array[];
  transactionsChecked: boolean;
}

function checkTransactions(header: BlockHeader, block: BlockInfo): void {
  const txs = block.transactions;
  if (txs.length !== header.txCount) throw new VerifyError("transactions", `${txs.length} carried, the header counts ${header.txCount}`);
  if (!equal(merkleRoot(txs.map(leaf)), header.txRoot)) throw new VerifyError("transactions", "their leaves' root is not the header's tx_root");
  const listed = block.txHashes.length === txs.length && block.txHashes.every((h, i) => equal(h, txHash(txs[i].body)));
  if (!listed) throw new VerifyError("transactions", "the hashes listed are not the transactions'");
}

/** `block` checked against `keys` (the set in force at its height). */
export function verifyBlock(chainId: string, keys: Uint8Array[], block: BlockInfo): VerifiedBlock {
  const digest = blake3(block.headerBytes);
  if (!equal(digest, block.hash)) throw new VerifyError("header_hash", "the header bytes do not hash to the block's hash");
  const header = fromBinary(BlockHeaderSchema, block.headerBytes);
  if (block.header && !equals(BlockHeaderSchema, block.header, header)) {
    throw new VerifyError("header_hash", "the node's decoded header is not the header its bytes hold");
  }
  if (header.chainId !== chainId) throw new VerifyError("chain", `block of chain ${JSON.stringify(header.chainId)}, not ${JSON.stringify(chainId)}`);
  if (!block.certificate) throw new VerifyError("no_certificate", `block ${header.height} carries no certificate`);
  verifyCertificate(block.certificate, chainId, keys, header.height, digest);
  const transactionsChecked = block.transactions.length > 0 || header.txCount === 0;
  if (transactionsChecked) checkTransactions(header, block);
  return { hash: digest, header, signers: block.certificate.signatures.map((s) => keys[s.validatorIndex]), transactionsChecked };
}

/** The position of transaction `hash` in `block` (carrying its transactions), checked against
 * the header's tx_root. */
export function verifyInclusion(block: BlockInfo, hash: Uint8Array): number {
  if (!equal(blake3(block.headerBytes), block.hash)) throw new VerifyError("header_hash", "the header bytes do not hash to the block's hash");
  const header = fromBinary(BlockHeaderSchema, block.headerBytes);
  checkTransactions(header, block);
  const i = block.transactions.findIndex((t) => equal(txHash(t.body), hash));
  if (i < 0) throw new VerifyError("not_included", `transaction ${toHex(hash)} is not in block ${header.height}`);
  return i;
}

/** What a client trusts (the genesis file's chain id and validators) and what it checked
 * since: blocks checked in order need only their certificates; a set change is asked of the
 * node and proven from genesis when a header names another set. */
export class ChainVerifier {
  private last: { height: bigint; hash: Uint8Array; keys: Uint8Array[]; next: Uint8Array } | undefined;
  private readonly known = new Map<bigint, string>();

  constructor(
    readonly chainId: string,
    readonly genesisKeys: Uint8Array[],
    /** The genesis hash (as `quorate genesis new` prints it), to check block 1's link to it. */
    readonly genesisHash?: Uint8Array,
  ) {}

  /** Trusts the genesis file's text (`genesis.json`), and its hash when given. */
  static fromGenesisJson(text: string, genesisHash?: Uint8Array): ChainVerifier {
    const g = JSON.parse(text) as { chain_id: string; validators: { public_key: string }[] };
    return new ChainVerifier(g.chain_id, g.validators.map((v) => fromHex(v.public_key)), genesisHash);
  }

  /** The set in force at `height`, proven from the genesis set by `changes`. */
  proveSet(changes: ValidatorSetChange[], height: bigint): Uint8Array[] {
    const keys = followSetChanges(this.chainId, this.genesisKeys, changes, height);
    const given = new Map(changes.filter((c) => c.height <= height).map((c) => [c.height, c.validators.map((v) => toHex(v.publicKey)).join(",")]));
    for (const [h, known] of this.known) {
      if (h <= height && !given.has(h)) throw new VerifyError("set_change", `the changes given leave out the one at ${h}`);
      if (given.has(h) && given.get(h) !== known) throw new VerifyError("set_change", `two different certified changes at ${h}`);
    }
    for (const [h, k] of given) this.known.set(h, k);
    return keys;
  }

  /** `block`, checked: its certificate against the set in force at its height, its link to the
   * block checked before it, its transactions when carried. */
  async verify(node: QuorateNode, block: BlockInfo): Promise<VerifiedBlock> {
    if (!equal(blake3(block.headerBytes), block.hash)) throw new VerifyError("header_hash", "the header bytes do not hash to the block's hash");
    // The height is the signed header's, never the node's own decoding of it.
    const height = fromBinary(BlockHeaderSchema, block.headerBytes).height;
    const last = this.last && this.last.height + 1n === height ? this.last : undefined;
    let keys: Uint8Array[];
    if (last && equal(validatorSetHash(last.keys), last.next)) {
      keys = last.keys;
    } else {
      keys = this.proveSet((await node.validatorSet(height)).changes, height);
      if (last && !equal(validatorSetHash(keys), last.next)) throw new VerifyError("unnamed_set", `the set proven for ${height} is not the one the header before it names`);
    }
    const verified = verifyBlock(this.chainId, keys, block);
    if (height === 1n && this.genesisHash && !equal(verified.header.parentHash, this.genesisHash)) {
      throw new VerifyError("parent", "block 1 does not follow the genesis given");
    }
    if (last && !equal(verified.header.parentHash, last.hash)) throw new VerifyError("parent", `block ${height} does not follow the block checked before it`);
    this.last = { height: verified.header.height, hash: verified.hash, keys, next: verified.header.nextValidatorsHash };
    return verified;
  }
}
