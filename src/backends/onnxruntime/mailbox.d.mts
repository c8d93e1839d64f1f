import type { MessagePort } from 'node:worker_threads';
import type { TensorDtype, TypedArray } from '../../tensor.js';

export declare const AWAY: 0;
export declare const POLLING: 1;
export declare const CLAIMED: 2;
export declare const POSTED: 3;
export declare const CTORS: Record<TensorDtype, new (buffer: ArrayBuffer, byteOffset: number, length: number) => TypedArray>;

export interface MailboxTensor {
  type?: string;
  dims: readonly number[];
  data: TypedArray;
}

export interface MailboxPlan {
  entries: { index: number; type: number; dims: readonly number[]; length: number; chunks: TypedArray[]; offset: number }[];
  bytes: number;
}

export declare function dtypeOf(data: TypedArray): TensorDtype;
export declare function stateWord(): Int32Array;
export declare function layout(parts: readonly Readonly<Record<string, MailboxTensor>>[], rows: number, inputIndex: ReadonlyMap<string, number>): MailboxPlan | undefined;
export declare function postRequest(state: Int32Array, mailbox: SharedArrayBuffer, id: number, wide: boolean, plan: MailboxPlan, alias?: ArrayBuffer): boolean;
export declare function writeRequest(slot: SharedArrayBuffer, id: number, wide: boolean, plan: MailboxPlan, alias?: ArrayBuffer): void;
export declare function poll<R>(state: Int32Array, port: MessagePort, ms: number, read: () => R): { message?: unknown; request?: R } | undefined;
export declare function readRequest(mailbox: SharedArrayBuffer, names: readonly string[], scratch: Map<string, ArrayBuffer>, alias?: ArrayBuffer): { id: number; wide: boolean; inPlace: boolean; feeds: Record<string, MailboxTensor & { type: TensorDtype }> };
export declare function resultBox(): SharedArrayBuffer;
export declare function resultCount(box: SharedArrayBuffer): Int32Array;
export declare function resultsRead(box: SharedArrayBuffer): Int32Array;
export declare function writeResult(box: SharedArrayBuffer, id: number, computeMs: number, wide: boolean, inPlace: boolean, outputs: Readonly<Record<string, { type: string; dims: readonly number[]; data: TypedArray }>>, outputIndex: ReadonlyMap<string, number>, ring?: () => void): boolean;
export declare function readResult(box: SharedArrayBuffer, names: readonly string[]): { id: number; computeMs: number; wide: boolean; inPlace: boolean; outputs: Record<string, { type: TensorDtype; dims: number[]; data: TypedArray }> };
