/**
 * A query scatters to the holders of the memory; each answers with its own top k, or fails. The merge
 * keeps one copy of each key (replicas of one vector come back from several holders), ranks by score
 * and says how many holders answered, so a caller can tell a complete answer from a partial one.
 */

export interface MemoryHit {
  key: string
  /** Cosine similarity to the query. */
  score: number
  meta: string
}

export type HolderAnswer =
  | { holder: string, hits: readonly MemoryHit[] }
  | { holder: string, error: string }

export interface MergedHit extends MemoryHit {
  /** Holders that returned this key, in the order their answers were given. */
  holders: string[]
}

export interface MergedAnswer {
  hits: MergedHit[]
  /** Distinct holders asked. */
  asked: number
  /** Distinct holders that answered (with hits or with none). */
  answered: number
  failed: Array<{ holder: string, error: string }>
}

/**
 * The best `k` distinct keys over all answers, best first (ties by key, so every node orders alike).
 * A key returned with different scores (a holder with an older copy) keeps its best score and that
 * copy's metadata. A holder that both answered and failed (asked twice) counts as answered.
 */
export function mergeAnswers (answers: readonly HolderAnswer[], k: number): MergedAnswer {
  const best = new Map<string, MergedHit>()
  const answered = new Set<string>()
  const failures = new Map<string, string>()
  for (const answer of answers) {
    if ('error' in answer) {
      failures.set(answer.holder, answer.error)
      continue
    }
    answered.add(answer.holder)
    for (const hit of answer.hits) {
      if (!Number.isFinite(hit.score)) continue
      const seen = best.get(hit.key)
      if (seen === undefined) {
        best.set(hit.key, { ...hit, holders: [answer.holder] })
        continue
      }
      if (!seen.holders.includes(answer.holder)) seen.holders.push(answer.holder)
      if (hit.score > seen.score) {
        seen.score = hit.score
        seen.meta = hit.meta
      }
    }
  }
  const hits = [...best.values()]
    .sort((a, b) => b.score - a.score || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, Math.max(0, k))
  const failed = [...failures].filter(([holder]) => !answered.has(holder)).map(([holder, error]) => ({ holder, error }))
  return { hits, asked: new Set(answers.map(a => a.holder)).size, answered: answered.size, failed }
}
