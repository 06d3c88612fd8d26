import { decodeMessage, encodeMessage } from '../wire/cbor.ts'
import { bytesField, fail, listField, uintField } from './fields.ts'
import { verifyProof, type MerkleTree } from './merkle.ts'
import { decodeVerdictBody, KEPT_VERSIONS, PULSE_VERSION, signedData, type SignedPulseMessage, type VerdictHeader, type VerdictMessage } from '../wire/pulse.ts'
import { requireSignature, type PulseVerifier } from '../crypto/signing.ts'
import { decodeResult, resultLeaf, resultRecord, resultsTree, type VerdictResult } from './verdict-tree.ts'

/**
 * An attestation: what one validator signed about one peer in one round, cut out of its verdict.
 * `{ v, body, sig, i, res, path }`: the verdict's signed header, the validator's signature, the
 * peer's result and its Merkle path to the header's `rr`. A few hundred bytes where the verdict was
 * tens of kilobytes, and it verifies on its own, for anyone, at any later time.
 */

export const ATTESTATION_MAX_BYTES = 2048
/** A tree of at most MAX_COMMITTEE (512) results has paths of at most 9 hashes; 10 leaves room for nothing else. */
const MAX_PATH = 10

export interface OpenAttestation {
  header: VerdictHeader
  result: VerdictResult
}

/**
 * Each verdict's results tree, built once: every committer a verdict names cuts its own attestation
 * from it (in the simulator, one node after another from the same verdict).
 */
const trees = new WeakMap<SignedPulseMessage<VerdictMessage>, MerkleTree>()

/** The attestation of `peer`'s result in a signed verdict, or undefined when the verdict does not name it. */
export function attestationOf (signed: SignedPulseMessage<VerdictMessage>, peer: string): Uint8Array | undefined {
  const results = signed.message.results
  const index = results.findIndex(r => r.peer === peer)
  const result = results[index]
  if (result === undefined) return undefined
  let tree = trees.get(signed)
  if (tree === undefined) {
    tree = resultsTree(results)
    trees.set(signed, tree)
  }
  const path = tree.proof(index)
  return encodeMessage({ v: PULSE_VERSION, body: signed.body, sig: signed.sig, i: index, res: resultRecord(result), path })
}

/**
 * Decodes an attestation and checks what it says by itself, but for the signature: strict encoding,
 * the header, and the result's path to the signed root. For a node reading what it kept itself.
 */
export function readAttestation (bytes: Uint8Array): OpenAttestation & { body: Uint8Array, sig: Uint8Array } {
  const record = decodeMessage(bytes, ATTESTATION_MAX_BYTES, KEPT_VERSIONS)
  const body = bytesField(record.body, 'body', undefined, ATTESTATION_MAX_BYTES)
  const sig = bytesField(record.sig, 'sig', 64)
  const header = decodeVerdictBody(body)
  const index = uintField(record.i, 'i', header.count)
  const result = decodeResult(record.res)
  const path = listField(record.path, 'path', MAX_PATH).map(p => bytesField(p, 'path hash', 32))
  if (!verifyProof(resultLeaf(result), index, header.count, path, header.rr)) fail('the result does not lead to the verdict\'s root')
  return { header, result, body, sig }
}

/** readAttestation, and the validator's signature: what anyone else's attestation must pass. */
export async function openAttestation (bytes: Uint8Array, verify: PulseVerifier): Promise<OpenAttestation> {
  const { header, result, body, sig } = readAttestation(bytes)
  await requireSignature(verify, header.peer, signedData(body), sig)
  return { header, result }
}
