import { encodeVarint } from '../../src/core/wire/varint.ts'

/** The unsigned varint of `value`, as libp2p's length prefixes write it. */
export const varint = (value: number): number[] => [...encodeVarint(value)]

/**
 * Length-prefixed messages whose bodies are 0xff bytes: read as a prefix, any of them would start a
 * varint a length-prefix guard refuses, so a guard that loses track of where a body ends fails on them.
 */
export function framedMessages (lengths: number[]): Uint8Array {
  return Uint8Array.from(lengths.flatMap(length => [...varint(length), ...Array<number>(length).fill(0xff)]))
}
