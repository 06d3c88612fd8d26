import { cosine } from '../embedding/vectors.ts'
import { compareBytes } from '../crypto/bytes.ts'
import type { SignedHit } from '../wire/memory.ts'

/**
 * A query scatters to the holders of the memory; each answers with its own top k as the owners signed
 * them, or fails. The merge trusts no holder's word: it computes each similarity itself, keeps one copy
 * of each owner's key (replicas come back from several holders; the highest version wins), and checks
 * the owner's signature of every hit it returns. A holder that sent a hit its owner did not sign (made
 * up, altered, or signed for another space) is counted as failed and all its hits are dropped, so one
 * liar costs the querier one batch of checks, not a wrong answer. It says how many holders answered
 * honestly, so a caller can tell a complete answer from a partial one.
 */

export type HolderAnswer =
  /** `trusted`: this node's own store, whose puts were checked when they were stored. */
  | { holder: string, hits: readonly SignedHit[], trusted?: boolean }
  | { holder: string, error: string }

export interface MergedHit {
  key: string
  /** The peer that signed the put: keys are names its owner chose, so two owners' keys are two hits. */
  owner: string
  version: number
  /** Cosine similarity to the query, computed here. */
  score: number
  meta: string
  /** Holders that returned this owner's key, in the order their answers were given. */
  holders: string[]
}

export interface MergedAnswer {
  hits: MergedHit[]
  /** Distinct holders asked. */
  asked: number
  /** Distinct holders that answered (with hits or with none) and sent nothing false. */
  answered: number
  failed: Array<{ holder: string, error: string }>
}

/** Whether the hit's owner signed it, in the space the query named. */
export type HitVerifier = (hit: SignedHit) => Promise<boolean>

export const FORGED_HIT = 'sent a hit its owner did not sign'

interface Sent {
  hit: SignedHit
  holder: string
  trusted: boolean
}

interface Candidate {
  best: Sent
  holders: string[]
  copies: Sent[]
}

/**
 * The best `k` distinct owners' keys over all answers, best first (ties by key then owner, so every
 * node orders alike), each checked against its owner's signature. A holder that both answered and
 * failed (asked twice) counts as answered, unless it lied.
 */
export async function mergeAnswers (answers: readonly HolderAnswer[], query: Float32Array, k: number, verify: HitVerifier): Promise<MergedAnswer> {
  const failures = new Map<string, string>()
  const liars = new Map<string, string>()
  const sent: Sent[] = []
  for (const answer of answers) {
    if ('error' in answer) {
      failures.set(answer.holder, answer.error)
      continue
    }
    const wrong = answer.hits.find(hit => hit.vector.length !== query.length)
    if (wrong !== undefined) {
      liars.set(answer.holder, `sent a vector of ${wrong.vector.length} dimensions for a query of ${query.length}`)
      continue
    }
    for (const hit of answer.hits) sent.push({ hit, holder: answer.holder, trusted: answer.trusted === true })
  }
  const scores = new Map<SignedHit, number>()
  const score = (hit: SignedHit): number => {
    let value = scores.get(hit)
    if (value === undefined) {
      value = cosine(query, hit.vector)
      scores.set(hit, value)
    }
    return value
  }
  const checked = new Map<SignedHit, boolean>()
  for (;;) {
    const top = ranked(sent.filter(s => !liars.has(s.holder)), score).slice(0, Math.max(0, k))
    const unchecked = top.filter(c => !c.best.trusted && !checked.has(c.best.hit))
    const results = await Promise.all(unchecked.map(async c => await verify(c.best.hit).catch(() => false)))
    unchecked.forEach((c, i) => checked.set(c.best.hit, results[i] === true))
    const forged = unchecked.filter(c => checked.get(c.best.hit) !== true).map(c => c.best)
    // A signature binds one content: another content under the same signature is made up, and costs no check.
    if (forged.length === 0) forged.push(...top.flatMap(c => c.copies.filter(copy => sameSignature(copy.hit, c.best.hit) && !sameContent(copy.hit, c.best.hit))))
    for (const s of forged) liars.set(s.holder, FORGED_HIT)
    if (forged.length > 0) continue
    const answered = new Set(answers.filter(a => !('error' in a) && !liars.has(a.holder)).map(a => a.holder))
    const failed = [...failures].filter(([holder]) => !answered.has(holder) && !liars.has(holder)).concat([...liars])
    return {
      hits: top.map(c => ({ key: c.best.hit.key, owner: c.best.hit.owner, version: c.best.hit.version, score: score(c.best.hit), meta: c.best.hit.meta, holders: c.holders })),
      asked: new Set(answers.map(a => a.holder)).size,
      answered: answered.size,
      failed: failed.map(([holder, error]) => ({ holder, error }))
    }
  }
}

/** One candidate per owner's key, its newest copy (of one version, the larger signature), best first. */
function ranked (sent: readonly Sent[], score: (hit: SignedHit) => number): Candidate[] {
  const byKey = new Map<string, Candidate>()
  for (const s of sent) {
    if (!Number.isFinite(score(s.hit))) continue
    const id = `${s.hit.owner}\n${s.hit.key}`
    const seen = byKey.get(id)
    if (seen === undefined) {
      byKey.set(id, { best: s, holders: [s.holder], copies: [s] })
      continue
    }
    seen.copies.push(s)
    if (!seen.holders.includes(s.holder)) seen.holders.push(s.holder)
    if (newer(s, seen.best)) seen.best = s
  }
  return [...byKey.values()].sort((a, b) => score(b.best.hit) - score(a.best.hit) || order(a.best.hit.key, b.best.hit.key) || order(a.best.hit.owner, b.best.hit.owner))
}

/** Holders keep the highest version and, of one version, the larger signature; a trusted copy wins a tie. */
function newer (a: Sent, b: Sent): boolean {
  if (a.hit.version !== b.hit.version) return a.hit.version > b.hit.version
  const bySig = compareBytes(a.hit.sig, b.hit.sig)
  return bySig !== 0 ? bySig > 0 : a.trusted && !b.trusted
}

function sameSignature (a: SignedHit, b: SignedHit): boolean {
  return a.version === b.version && compareBytes(a.sig, b.sig) === 0
}

function sameContent (a: SignedHit, b: SignedHit): boolean {
  return a.meta === b.meta && a.vector.length === b.vector.length && a.vector.every((x, i) => Object.is(x, b.vector[i]))
}

function order (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
