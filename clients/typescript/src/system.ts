// The four system contracts, their methods typed by the interface each contract embeds: the
// argument and result messages come from the contract's service as generated from the same
// .proto files the contracts embed.
import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape } from "@bufbuild/protobuf";

import { utf8 } from "./bytes.js";
import { BadInput } from "./errors.js";
import { derive } from "./keys.js";
import type { QuorateNode } from "./node.js";
import { CertificatesContract } from "./gen/quorate/contracts/v1/certificates_pb.js";
import { CreditEscrowContract } from "./gen/quorate/contracts/v1/credit_escrow_pb.js";
import { DevicePermissionsContract } from "./gen/quorate/contracts/v1/device_permissions_pb.js";
import { RemittanceContract } from "./gen/quorate/contracts/v1/remittance_pb.js";
import { CallSchema, type Call } from "./gen/quorate/v1/types_pb.js";

const SERVICES: Record<string, DescService> = {
  remittance: RemittanceContract,
  "credit-escrow": CreditEscrowContract,
  certificates: CertificatesContract,
  "device-permissions": DevicePermissionsContract,
};

/** The names of the system contracts. */
export const SYSTEM_CONTRACTS = Object.keys(SERVICES);

/** The address of the system contract `name`. */
export function systemContractAddress(name: string): Uint8Array {
  return derive("quorate/v1/system-contract", utf8(name), 20);
}

/** One system contract: its address and its methods' argument and result types. */
export class SystemContract {
  readonly address: Uint8Array;
  private readonly service: DescService;

  constructor(readonly name: string) {
    const service = SERVICES[name];
    if (!service) throw new BadInput(`no system contract ${JSON.stringify(name)} (there are: ${SYSTEM_CONTRACTS.join(", ")})`);
    this.service = service;
    this.address = systemContractAddress(name);
  }

  /** The method names. */
  get methods(): string[] {
    return this.service.methods.map((m) => m.name);
  }

  private method(name: string): { input: DescMessage; output: DescMessage } {
    const m = this.service.methods.find((x) => x.name === name);
    if (!m) throw new BadInput(`${this.name} has no method ${JSON.stringify(name)} (it has: ${this.methods.join(", ")})`);
    return m;
  }

  /** The encoded arguments of `method` from `fields` (its argument message's fields). */
  encodeArgs(method: string, fields: Record<string, unknown> = {}): Uint8Array {
    const input = this.method(method).input;
    try {
      return toBinary(input, create(input, fields as MessageInitShape<DescMessage>));
    } catch (e) {
      throw new BadInput(`${this.name}.${method}: ${(e as Error).message}`);
    }
  }

  /** The `Call` payload of `method` with `fields`, moving `value` to the contract. */
  call(method: string, fields: Record<string, unknown> = {}, value: bigint | number = 0n): Call {
    return create(CallSchema, { contract: this.address, method, args: this.encodeArgs(method, fields), value: BigInt(value) });
  }

  /** What `method` returned (a receipt's returnData or a query's answer), decoded. */
  result(method: string, data: Uint8Array): Record<string, unknown> {
    return fromBinary(this.method(method).output, data) as unknown as Record<string, unknown>;
  }

  /** Runs `method` read-only on `node`'s latest state; its result, decoded. */
  async query(node: QuorateNode, method: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.result(method, await node.query(this.address, method, this.encodeArgs(method, fields)));
  }
}

/** The system contract `name` (remittance, credit-escrow, certificates, device-permissions). */
export function systemContract(name: string): SystemContract {
  return new SystemContract(name);
}
