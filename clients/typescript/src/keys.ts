// ed25519 keys and addresses, compatible with `quorate keys generate` files.
import * as ed from "@noble/ed25519";
import { blake3 } from "@noble/hashes/blake3.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { create } from "@bufbuild/protobuf";

import { bigEndian, compare, concat, equal, fromHex, toHex, utf8 } from "./bytes.js";
import { BadInput } from "./errors.js";
import { KeySetSchema, type KeySet as KeySetMessage } from "./gen/quorate/v1/types_pb.js";

ed.hashes.sha512 = sha512;

/** Signs `message` with the ed25519 key of `seed`. */
export type Signer = (seed: Uint8Array, message: Uint8Array) => Uint8Array;

/** The signing in use: @noble/ed25519 (pure JavaScript, everywhere) unless the Node.js entry
 * installed OpenSSL's, about ten times faster. Both give the same bytes: ed25519 signatures are
 * deterministic. */
let signer: Signer = (seed, message) => ed.sign(message, seed);
let signerName = "noble";

/** Replaces the signing implementation (`@quorate/client/node` installs Node's own). */
export function setSigner(s: Signer, name: string): void {
  signer = s;
  signerName = name;
}

/** Which signing implementation is in use ("noble", or the one installed). */
export function signingWith(): string {
  return signerName;
}

/** blake3 in key-derivation mode with the context string `context`, cut to `len` bytes. */
export function derive(context: string, data: Uint8Array, len = 32): Uint8Array {
  return blake3(data, { context: utf8(context) }).slice(0, len);
}

/** The 20-byte address of a single key: blake3 derive_key("quorate/v1/address", key)[:20]. */
export function addressOf(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new BadInput(`a public key is 32 bytes, not ${publicKey.length}`);
  return derive("quorate/v1/address", publicKey, 20);
}

/** The address of the contract `deployer`'s transaction with `nonce` deploys. */
export function contractAddress(deployer: Uint8Array, nonce: number | bigint): Uint8Array {
  if (deployer.length !== 20) throw new BadInput(`a deployer address is 20 bytes, not ${deployer.length}`);
  return derive("quorate/v1/contract-address", concat(deployer, bigEndian(nonce, 8)), 20);
}

/** Whether `signature` is `publicKey`'s over `message` (strict RFC 8032 verification). */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return ed.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** An ed25519 signing key. */
export class Key {
  readonly publicKey: Uint8Array;
  readonly address: Uint8Array;

  private readonly seed: Uint8Array;

  constructor(seed: Uint8Array) {
    if (seed.length !== 32) throw new BadInput(`an ed25519 seed is 32 bytes, not ${seed.length}`);
    // A copy: the caller's array may be reused or wiped.
    this.seed = seed.slice();
    this.publicKey = ed.getPublicKey(this.seed);
    this.address = addressOf(this.publicKey);
  }

  /** A new random key. */
  static generate(): Key {
    return new Key(crypto.getRandomValues(new Uint8Array(32)));
  }

  /** The key of a key file's text (`quorate keys generate`: hex `secret_key`); its
   * `public_key` and `address`, when present, must be this key's. */
  static fromJson(text: string, origin = "key file"): Key {
    let data: Record<string, unknown>;
    let key: Key;
    try {
      data = JSON.parse(text);
      key = new Key(fromHex(String(data.secret_key)));
    } catch (e) {
      throw new BadInput(`${origin}: not a quorate key file (${(e as Error).message})`);
    }
    for (const [name, value] of [["public_key", key.publicKey], ["address", key.address]] as const) {
      if (name in data && !equal(fromHex(String(data[name])), value)) {
        throw new BadInput(`${origin}: its ${name} is not the one of its secret key`);
      }
    }
    return key;
  }

  /** The key file's text, as `quorate keys generate` writes it. */
  toJson(): string {
    return JSON.stringify(
      { secret_key: toHex(this.seed), public_key: toHex(this.publicKey), address: toHex(this.address) },
      null,
      2,
    ) + "\n";
  }

  /** The 64-byte signature of `message`. */
  sign(message: Uint8Array): Uint8Array {
    return signer(this.seed, message);
  }
}

/** The weights each class of action needs (docs/TRANSACTIONS.md, "Multi-key accounts"). */
export interface Thresholds {
  base: number;
  keyManagement: number;
  deploy?: number;
  largeTransferAbove?: bigint;
  largeTransfer?: number;
  contractCall?: number;
}

/** Up to 16 (public key, weight) pairs and their thresholds: a multi-signature account. */
export class KeySet {
  readonly keys: ReadonlyArray<readonly [Uint8Array, number]>;
  readonly canonical: Uint8Array;
  readonly address: Uint8Array;

  constructor(keys: Array<[Uint8Array, number]>, readonly thresholds: Thresholds) {
    const ordered = [...keys].sort((a, b) => compare(a[0], b[0]));
    if (ordered.length < 1 || ordered.length > 16) throw new BadInput(`a key set has 1 to 16 keys, not ${ordered.length}`);
    for (let i = 0; i < ordered.length; i++) {
      const [k, w] = ordered[i];
      if (k.length !== 32 || !Number.isInteger(w) || w < 1) throw new BadInput("each key is 32 bytes with a weight of at least 1");
      if (i > 0 && equal(ordered[i - 1][0], k)) throw new BadInput("a key appears twice in the key set");
    }
    this.keys = ordered;
    const t = thresholds;
    const parts: Uint8Array[] = [new Uint8Array([ordered.length])];
    for (const [k, w] of ordered) parts.push(k, bigEndian(w, 4));
    parts.push(bigEndian(t.base, 4), bigEndian(t.keyManagement, 4), bigEndian(t.deploy ?? 0, 4));
    parts.push(bigEndian(t.largeTransferAbove ?? 0n, 8), bigEndian(t.largeTransfer ?? 0, 4));
    if (t.contractCall) parts.push(bigEndian(t.contractCall, 4));
    this.canonical = concat(...parts);
    this.address = derive("quorate/v1/multisig-address", this.canonical, 20);
  }

  /** The key set as the protobuf a first transaction carries. */
  toProto(): KeySetMessage {
    const t = this.thresholds;
    return create(KeySetSchema, {
      keys: this.keys.map(([publicKey, weight]) => ({ publicKey, weight })),
      thresholds: {
        base: t.base,
        keyManagement: t.keyManagement,
        deploy: t.deploy ?? 0,
        largeTransferAbove: t.largeTransferAbove ?? 0n,
        largeTransfer: t.largeTransfer ?? 0,
        contractCall: t.contractCall ?? 0,
      },
    });
  }
}
