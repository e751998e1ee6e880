// Transactions: bodies, hashes, signing and co-signing (offline, through bytes or text), leaves,
// and a transaction in words for the one asked to sign it.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { blake3 } from "@noble/hashes/blake3.js";

import { concat, equal, fromHex, toHex, utf8 } from "./bytes.js";
import { BadInput } from "./errors.js";
import { addressOf, derive, type Key, type KeySet, type Thresholds, verifySignature } from "./keys.js";
import {
  type Admin,
  AdminSchema,
  CallSchema,
  type Call,
  type KeyChange,
  KeyChangeSchema,
  ReplaceValidatorSchema,
  SetTrustedDeployerSchema,
  ThresholdsSchema,
  ValidatorEntrySchema,
  WeightedKeySchema,
  CosignatureSchema,
  type Transaction,
  TransactionSchema,
  type TxBody,
  TxBodySchema,
} from "./gen/quorate/v1/types_pb.js";

/** The prefix of what every key of a transaction signs. */
export const TX_SIGN_DOMAIN = utf8("quorate/v1/tx\0");

/** The largest transaction read from text or bytes (the node's own limit is lower). */
export const MAX_TX_BYTES = 4 << 20;

/** The transaction hash: blake3 of the encoded body. */
export function txHash(bodyBytes: Uint8Array): Uint8Array {
  return blake3(bodyBytes);
}

/** What every key of a transaction signs: "quorate/v1/tx\0" ‖ hash. */
export function signingMessage(hash: Uint8Array): Uint8Array {
  if (hash.length !== 32) throw new BadInput(`a transaction hash is 32 bytes, not ${hash.length}`);
  return concat(TX_SIGN_DOMAIN, hash);
}

function address(a: Uint8Array, what: string): Uint8Array {
  if (a.length !== 20) throw new BadInput(`${what}: an address is 20 bytes, not ${a.length}`);
  return a;
}

/** Fields every body has. */
export interface BodyFields {
  chainId: string;
  signer: Uint8Array;
  nonce: bigint | number;
  fuelLimit: bigint | number;
  /** The key set of a multi-signature address, on its first transaction. */
  keySet?: KeySet;
}

function base(f: BodyFields): TxBody {
  return create(TxBodySchema, {
    chainId: f.chainId,
    signer: address(f.signer, "signer"),
    nonce: BigInt(f.nonce),
    fuelLimit: BigInt(f.fuelLimit),
    keySet: f.keySet?.toProto(),
  });
}

/** A transfer of `amount` to `to`. */
export function transfer(f: BodyFields, to: Uint8Array, amount: bigint | number, memo: Uint8Array = new Uint8Array()): TxBody {
  if (BigInt(amount) <= 0n) throw new BadInput("a transfer moves a positive amount");
  const body = base(f);
  body.payload = { case: "transfer", value: { $typeName: "quorate.v1.Transfer", to: address(to, "recipient"), amount: BigInt(amount), memo } };
  return body;
}

/** A call of `method` of `contract` with encoded `args`, moving `value` to the contract. */
export function call(f: BodyFields, contract: Uint8Array, method: string, args: Uint8Array = new Uint8Array(), value: bigint | number = 0n): TxBody {
  return withCall(f, create(CallSchema, { contract: address(contract, "contract"), method, args, value: BigInt(value) }));
}

/** A body carrying the call payload `payload` (see `system`). */
export function withCall(f: BodyFields, payload: Call): TxBody {
  const body = base(f);
  body.payload = { case: "call", value: payload };
  return body;
}

/** A deploy of the wasm `code`, its `init` run with `initArgs`. */
export function deploy(f: BodyFields, code: Uint8Array, initArgs: Uint8Array = new Uint8Array()): TxBody {
  const body = base(f);
  body.payload = {
    case: "deploy",
    value: { $typeName: "quorate.v1.Deploy", code, initArgs, machineCode: new Uint8Array(), engineFingerprint: new Uint8Array() },
  };
  return body;
}

/** The transaction of `body` (or its encoded bytes, kept as they are) signed by `key`. */
export function sign(body: TxBody | Uint8Array, key: Key): Transaction {
  const raw = body instanceof Uint8Array ? body : toBinary(TxBodySchema, body);
  return create(TransactionSchema, {
    body: raw,
    publicKey: key.publicKey,
    signature: key.sign(signingMessage(txHash(raw))),
  });
}

/** The keys whose signatures `tx` carries, each checked: a signature that does not verify
 * throws BadInput naming its key (what a co-signer checks before adding its own). */
export function checkSignatures(tx: Transaction): Uint8Array[] {
  const message = signingMessage(txHash(tx.body));
  const pairs: Array<[Uint8Array, Uint8Array]> = [[tx.publicKey, tx.signature], ...tx.cosignatures.map((c) => [c.publicKey, c.signature] as [Uint8Array, Uint8Array])];
  for (const [k, s] of pairs) {
    if (!verifySignature(k, message, s)) throw new BadInput(`the signature of key ${toHex(k)} does not verify`);
  }
  return pairs.map(([k]) => k);
}

/** `tx` (or its bytes) with `key`'s signature added, after checking the signatures it carries;
 * a key that signed already is refused. */
export function cosign(transaction: Transaction | Uint8Array, key: Key): Transaction {
  const tx = transaction instanceof Uint8Array ? fromBytes(transaction) : transaction;
  if (checkSignatures(tx).some((k) => equal(k, key.publicKey))) {
    throw new BadInput("this key signed the transaction already");
  }
  return create(TransactionSchema, {
    body: tx.body,
    publicKey: tx.publicKey,
    signature: tx.signature,
    cosignatures: [
      ...tx.cosignatures,
      create(CosignatureSchema, { publicKey: key.publicKey, signature: key.sign(signingMessage(txHash(tx.body))) }),
    ],
  });
}

/** The transaction's leaf in its block's tx_root: blake3 derive_key("quorate/v1/tx-leaf",
 * hash ‖ signing key ‖ each cosigner's key). */
export function leaf(tx: Transaction): Uint8Array {
  return derive("quorate/v1/tx-leaf", concat(txHash(tx.body), tx.publicKey, ...tx.cosignatures.map((c) => c.publicKey)));
}

/** The encoded transaction. */
export function toBytes(tx: Transaction): Uint8Array {
  return toBinary(TransactionSchema, tx);
}

/** The transaction encoded in `bytes`, checked for shape. */
export function fromBytes(bytes: Uint8Array): Transaction {
  if (bytes.length > MAX_TX_BYTES) throw new BadInput(`a transaction of ${bytes.length} bytes (at most ${MAX_TX_BYTES})`);
  let tx: Transaction;
  try {
    tx = fromBinary(TransactionSchema, bytes);
    fromBinary(TxBodySchema, tx.body);
  } catch (e) {
    throw new BadInput(`not a transaction: ${(e as Error).message}`);
  }
  if (tx.publicKey.length !== 32) throw new BadInput(`public key is ${tx.publicKey.length} bytes; expected 32`);
  if (tx.signature.length !== 64) throw new BadInput(`signature is ${tx.signature.length} bytes; expected 64`);
  return tx;
}

/** `tx` as text between machines: the hex of its encoding and a newline (what `quorate tx
 * sign` reads and writes). */
export function toText(tx: Transaction): string {
  return toHex(toBytes(tx)) + "\n";
}

/** The transaction `text` holds ([`toText`]'s form). */
export function fromText(text: string): Transaction {
  if (text.trim().length > 2 * MAX_TX_BYTES) throw new BadInput("too long for a transaction");
  return fromBytes(fromHex(text));
}

/** `tx` in words (hash, account, nonce, what it does, who signed), its signatures checked:
 * what a co-signer reads before signing. */
export function describe(tx: Transaction): string {
  const body = fromBinary(TxBodySchema, tx.body);
  const signers = checkSignatures(tx);
  const lines = [
    `transaction ${toHex(txHash(tx.body))}`,
    `  account ${toHex(body.signer)} nonce ${body.nonce} on chain ${JSON.stringify(body.chainId)}, fuel up to ${body.fuelLimit}`,
  ];
  const p = body.payload;
  switch (p.case) {
    case "transfer":
      lines.push(`  transfer ${p.value.amount} to ${toHex(p.value.to)} (memo ${JSON.stringify(new TextDecoder().decode(p.value.memo))})`);
      break;
    case "call":
      lines.push(`  call ${toHex(p.value.contract)}.${JSON.stringify(p.value.method)} with ${p.value.args.length} bytes of arguments (${toHex(p.value.args)}), moving ${p.value.value}`);
      break;
    case "deploy":
      lines.push(`  deploy code ${toHex(blake3(p.value.code))} (${p.value.code.length} bytes)`);
      break;
    case "admin": {
      const a = p.value.action;
      if (a.case === "setTrustedDeployer") lines.push(`  admin: ${a.value.trusted ? "trust" : "distrust"} ${toHex(a.value.account)} as a trusted deployer`);
      else if (a.case === "setAdmin") lines.push(`  admin: hand the admin role to ${toHex(a.value)}`);
      else if (a.case === "addValidator") lines.push(`  admin: add validator ${toHex(a.value.publicKey)} (${JSON.stringify(a.value.name)})`);
      else if (a.case === "removeValidator") lines.push(`  admin: remove validator ${toHex(a.value)}`);
      else if (a.case === "replaceValidator") lines.push(`  admin: replace validator ${toHex(a.value.oldKey)} by ${a.value.new ? toHex(a.value.new.publicKey) : "nothing"}`);
      else lines.push("  admin: no action");
      break;
    }
    case "keys": {
      const c = p.value.change;
      if (c.case === "addKey") lines.push(`  keys: add ${toHex(c.value.publicKey)} with weight ${c.value.weight}`);
      else if (c.case === "removeKey") lines.push(`  keys: remove ${toHex(c.value)}`);
      else if (c.case === "setWeight") lines.push(`  keys: weight of ${toHex(c.value.publicKey)} becomes ${c.value.weight}`);
      else if (c.case === "setThresholds") {
        const t = c.value;
        lines.push(`  keys: thresholds base ${t.base}, key management ${t.keyManagement}, deploy ${t.deploy}, large transfer ${t.largeTransfer} above ${t.largeTransferAbove}, contract call ${t.contractCall}`);
      } else lines.push("  keys: no change");
      break;
    }
    default:
      lines.push("  no payload");
  }
  if (body.keySet) lines.push("  registers the account's key set");
  lines.push(`  signed by ${signers.map(toHex).join(", ")}`);
  return lines.join("\n");
}

export { addressOf };

function withKeys(f: BodyFields, change: KeyChange["change"]): TxBody {
  const body = base(f);
  body.payload = { case: "keys", value: create(KeyChangeSchema, { change }) };
  return body;
}

/** Adds `publicKey` with `weight` to the signing account's keys. */
export function addKey(f: BodyFields, publicKey: Uint8Array, weight: number): TxBody {
  return withKeys(f, { case: "addKey", value: create(WeightedKeySchema, { publicKey, weight }) });
}

/** Removes `publicKey` from the signing account's keys. */
export function removeKey(f: BodyFields, publicKey: Uint8Array): TxBody {
  return withKeys(f, { case: "removeKey", value: publicKey });
}

/** Gives `publicKey`, a key of the account, the weight `weight`. */
export function setWeight(f: BodyFields, publicKey: Uint8Array, weight: number): TxBody {
  return withKeys(f, { case: "setWeight", value: create(WeightedKeySchema, { publicKey, weight }) });
}

/** Replaces the account's thresholds. */
export function setThresholds(f: BodyFields, t: Thresholds): TxBody {
  return withKeys(f, {
    case: "setThresholds",
    value: create(ThresholdsSchema, {
      base: t.base, keyManagement: t.keyManagement, deploy: t.deploy ?? 0,
      largeTransferAbove: t.largeTransferAbove ?? 0n, largeTransfer: t.largeTransfer ?? 0, contractCall: t.contractCall ?? 0,
    }),
  });
}

function withAdmin(f: BodyFields, action: Admin["action"]): TxBody {
  const body = base(f);
  body.payload = { case: "admin", value: create(AdminSchema, { action }) };
  return body;
}

/** Admin: allows or stops `account` deploying precompiled machine code. */
export function setTrustedDeployer(f: BodyFields, account: Uint8Array, trusted: boolean): TxBody {
  return withAdmin(f, { case: "setTrustedDeployer", value: create(SetTrustedDeployerSchema, { account: address(account, "account"), trusted }) });
}

/** Admin: hands the admin role to `to`. */
export function setAdmin(f: BodyFields, to: Uint8Array): TxBody {
  return withAdmin(f, { case: "setAdmin", value: address(to, "admin") });
}

/** Admin: adds a validator at the end of the set (in force some heights later). */
export function addValidator(f: BodyFields, publicKey: Uint8Array, name: string): TxBody {
  return withAdmin(f, { case: "addValidator", value: create(ValidatorEntrySchema, { publicKey, name }) });
}

/** Admin: removes the validator with `publicKey`. */
export function removeValidator(f: BodyFields, publicKey: Uint8Array): TxBody {
  return withAdmin(f, { case: "removeValidator", value: publicKey });
}

/** Admin: puts `newKey` (with `name`) in the place of the validator `oldKey`. */
export function replaceValidator(f: BodyFields, oldKey: Uint8Array, newKey: Uint8Array, name: string): TxBody {
  return withAdmin(f, {
    case: "replaceValidator",
    value: create(ReplaceValidatorSchema, { oldKey, new: create(ValidatorEntrySchema, { publicKey: newKey, name }) }),
  });
}
