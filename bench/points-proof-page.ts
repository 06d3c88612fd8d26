import { checkProof, type PointsCheck } from '../src/core/points-proof/check.ts'
import { decodeProverFrame, type AskFrame, type PickFrame } from '../src/core/wire/points.ts'
import { verifyPulseSignature } from '../src/net/pulse-keys.ts'

/**
 * The checker's work on one proof, bundled for a Chromium page by bench/points-proof.ts: decoding
 * the summary and evidence frames and checking them, as PointsService does once the bytes are in.
 * Beside it, the reference: the same number of bare Ed25519 verifications through WebCrypto.
 */

export interface PageInput {
  subject: string
  networkId: string
  roundMs: number
  validators: string[]
  ask: AskFrame
  pick: PickFrame
  summary: number[]
  evidence: number[]
}

async function check (input: PageInput): Promise<{ ms: number, result: PointsCheck }> {
  const summaryBytes = Uint8Array.from(input.summary)
  const evidenceBytes = Uint8Array.from(input.evidence)
  const start = performance.now()
  const summary = decodeProverFrame(summaryBytes, 'summary')
  const evidence = decodeProverFrame(evidenceBytes, 'evidence')
  if (summary.t !== 'summary' || evidence.t !== 'evidence') throw new Error('not a proof')
  const result = await checkProof({ subject: input.subject, networkId: input.networkId, roundMs: input.roundMs, verify: verifyPulseSignature, counts: v => input.validators.includes(v) }, input.ask, summary, input.pick, evidence)
  return { ms: performance.now() - start, result }
}

/** `count` Ed25519 verifications of one 200-byte message with a fresh key each time, in parallel, as the check's are. */
async function bareVerifies (count: number): Promise<number> {
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']) as CryptoKeyPair
  const raw = await crypto.subtle.exportKey('raw', pair.publicKey)
  const data = new Uint8Array(200)
  const sig = await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, data)
  const start = performance.now()
  await Promise.all(Array.from({ length: count }, async () => {
    const key = await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify'])
    if (!await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, data)) throw new Error('bad reference signature')
  }))
  return performance.now() - start
}

(globalThis as unknown as { pointsBench: unknown }).pointsBench = { check, bareVerifies }
