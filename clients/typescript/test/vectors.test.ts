// The conformance vectors computed by the node's own rules (clients/vectors.json, written and
// checked by client/tests/vectors.rs): this library must compute every one of them exactly.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { fromBinary, toBinary } from "@bufbuild/protobuf";

import {
  ChainVerifier, contractAddress, signingWith, followSetChanges, fromHex, Key, KeySet, systemContract, systemContractAddress,
  toHex, tx, verifyBlock, VerifyError,
} from "../src/index.js";
import { BlockInfoSchema } from "../src/gen/quorate/v1/node_pb.js";
import { BlockHeaderSchema, TxBodySchema, ValidatorSetChangeSchema } from "../src/gen/quorate/v1/types_pb.js";

const vectors = JSON.parse(readFileSync(join(resolve(import.meta.dirname, "..", "..", ".."), "vectors.json"), "utf8"));

test("keys and addresses", () => {
  for (const v of vectors.keys) {
    const key = new Key(fromHex(v.seed));
    assert.equal(toHex(key.publicKey), v.public_key);
    assert.equal(toHex(key.address), v.address);
  }
});

test("multi-signature key sets", () => {
  for (const v of vectors.multisig) {
    const t = v.thresholds;
    const set = new KeySet(
      v.keys.map((k: { public_key: string; weight: number }) => [fromHex(k.public_key), k.weight]),
      { base: t.base, keyManagement: t.key_management, deploy: t.deploy, largeTransferAbove: BigInt(t.large_transfer_above), largeTransfer: t.large_transfer, contractCall: t.contract_call },
    );
    assert.equal(toHex(set.canonical), v.canonical_bytes);
    assert.equal(toHex(set.address), v.address);
  }
});

test("a transfer encoded, hashed, signed, co-signed and leafed", () => {
  const v = vectors.transfer;
  const sender = new Key(fromHex(v.signer_seed));
  const body = tx.transfer({ chainId: v.chain_id, signer: sender.address, nonce: v.nonce, fuelLimit: v.fuel_limit }, fromHex(v.to), v.amount, fromHex(v.memo));
  const signed = tx.sign(body, sender);
  assert.equal(toHex(signed.body), v.body_bytes);
  assert.equal(toHex(tx.txHash(signed.body)), v.tx_hash);
  assert.equal(toHex(tx.signingMessage(tx.txHash(signed.body))), v.signing_message);
  assert.equal(toHex(signed.signature), v.signature);
  assert.equal(toHex(tx.leaf(signed)), v.leaf);
  const cosigned = tx.cosign(tx.toBytes(signed), new Key(fromHex(v.cosigner_seed)));
  assert.equal(toHex(tx.toBytes(cosigned)), v.cosigned_transaction);
  assert.equal(toHex(tx.leaf(cosigned)), v.cosigned_leaf);
  assert.deepEqual(tx.fromText(tx.toText(cosigned)), cosigned);
});

test("system and deployed contract addresses", () => {
  for (const v of vectors.system_contracts) {
    assert.equal(toHex(systemContractAddress(v.name)), v.address);
    assert.equal(toHex(systemContract(v.name).address), v.address);
  }
  const c = vectors.contract_address;
  assert.equal(toHex(contractAddress(fromHex(c.deployer), c.nonce)), c.address);
});

function outcome(genesis: Uint8Array[], changes: string[], blockHex: string): string {
  const v = vectors.verification;
  const block = fromBinary(BlockInfoSchema, fromHex(blockHex));
  try {
    const height = fromBinary(BlockHeaderSchema, block.headerBytes).height; // the signed one
    const keys = followSetChanges(v.chain_id, genesis, changes.map((c) => fromBinary(ValidatorSetChangeSchema, fromHex(c))), height);
    verifyBlock(v.chain_id, keys, block);
    return "ok";
  } catch (e) {
    if (e instanceof VerifyError) return e.kind;
    throw e;
  }
}

test("blocks and forged certificates", () => {
  const v = vectors.verification;
  const genesis = v.genesis_validators.map(fromHex);
  assert.ok(v.blocks.length >= 10);
  for (const b of v.blocks) assert.equal(outcome(genesis, v.set_changes, b.block_info), b.expect, b.about);
});

test("tampered set-change chains", () => {
  const v = vectors.verification;
  const genesis = v.genesis_validators.map(fromHex);
  for (const c of v.set_change_chains) assert.equal(outcome(genesis, c.changes, c.block_info), c.expect, c.about);
});

test("a verifier refuses changes that leave out one it proved", () => {
  const v = vectors.verification;
  const genesis = v.genesis_validators.map(fromHex);
  const changes = v.set_changes.map((c: string) => fromBinary(ValidatorSetChangeSchema, fromHex(c)));
  const verifier = new ChainVerifier(v.chain_id, genesis);
  const changed = verifier.proveSet(changes, 7n);
  assert.notDeepEqual(changed, genesis);
  assert.deepEqual(verifier.proveSet(changes, 9n), changed);
  assert.throws(() => verifier.proveSet([], 9n), (e: unknown) => e instanceof VerifyError && e.kind === "set_change");
  assert.deepEqual(verifier.proveSet([], 4n), genesis);
});

test("Node's OpenSSL signing gives the vectors' signatures too", async () => {
  assert.equal(signingWith(), "noble", "the vectors above were signed by @noble/ed25519");
  await import("../src/node-transport.js"); // installs OpenSSL's signer
  assert.equal(signingWith(), "openssl");
  const v = vectors.transfer;
  const sender = new Key(fromHex(v.signer_seed));
  const body = tx.transfer({ chainId: v.chain_id, signer: sender.address, nonce: v.nonce, fuelLimit: v.fuel_limit }, fromHex(v.to), v.amount, fromHex(v.memo));
  assert.equal(toHex(tx.sign(body, sender).signature), v.signature);
});

test("every kind of body", () => {
  assert.equal(vectors.bodies.length, 13);
  for (const v of vectors.bodies) {
    const f = v.fields;
    const c = { chainId: v.chain_id, signer: fromHex(v.signer), nonce: v.nonce, fuelLimit: v.fuel_limit };
    let body;
    switch (v.kind) {
      case "call": body = tx.call(c, fromHex(f.contract), f.method, fromHex(f.args), f.value); break;
      case "system_call": body = tx.withCall(c, systemContract(f.contract).call(f.method, f.fields, f.value)); break;
      case "deploy": body = tx.deploy(c, fromHex(f.code), fromHex(f.init_args)); break;
      case "add_key": body = tx.addKey(c, fromHex(f.public_key), f.weight); break;
      case "remove_key": body = tx.removeKey(c, fromHex(f.public_key)); break;
      case "set_weight": body = tx.setWeight(c, fromHex(f.public_key), f.weight); break;
      case "set_thresholds": body = tx.setThresholds(c, { base: f.base, keyManagement: f.key_management, deploy: f.deploy, largeTransferAbove: BigInt(f.large_transfer_above), largeTransfer: f.large_transfer, contractCall: f.contract_call }); break;
      case "set_trusted_deployer": body = tx.setTrustedDeployer(c, fromHex(f.account), f.trusted); break;
      case "set_admin": body = tx.setAdmin(c, fromHex(f.to)); break;
      case "add_validator": body = tx.addValidator(c, fromHex(f.public_key), f.name); break;
      case "remove_validator": body = tx.removeValidator(c, fromHex(f.public_key)); break;
      case "replace_validator": body = tx.replaceValidator(c, fromHex(f.old), fromHex(f.new), f.name); break;
      default: throw new Error(`no builder for ${v.kind}`);
    }
    assert.equal(toHex(toBinary(TxBodySchema, body)), v.body_bytes, v.kind);
  }
});
