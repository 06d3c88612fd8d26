import { EMBED_LIMITS } from '../core/embedding/limits.ts'
import { PeerBusyError } from '../core/errors.ts'
import { TaskInputError } from '../core/tasks/errors.ts'
import { orchestrate, type TaskWorkers } from '../core/tasks/orchestrate.ts'
import { BatchDims } from '../core/tasks/batch-dims.ts'
import { systemScheduler } from '../core/scheduler.ts'
import type { EmbedResult } from '../node/api.ts'
import type { EmbeddingCoordinator } from '../node/embedding-coordinator.ts'

/**
 * Embeddings of more texts than one embed job holds (OpenAI clients send up to 2,048 inputs): the
 * batch is split into jobs of EMBED_LIMITS.batch texts over the peers whose embedding works, as
 * `tasks.run` does in a page (core/tasks/orchestrate.ts), and the vectors come back in input order.
 * Each job ends with its own countersigned receipt, so every serving page earns for its share.
 */
export async function embedSharded (embedding: EmbeddingCoordinator, model: string, texts: string[], signal: AbortSignal): Promise<EmbedResult> {
  const dims = new BatchDims(await embedding.dimsOf(model))
  const workers: TaskWorkers<string, Float32Array> = {
    candidates: async exclude => embedding.peers(exclude),
    run: async (peer, shard, shardSignal) => {
      const out = await embedding.shardOn(peer, model, shard, { signal: shardSignal })
      // A peer of another model (or a liar) is a failed worker: its shard goes to the next one.
      dims.accept(peer, out.dims)
      return { results: out.vectors, receipt: out.receipt }
    }
  }
  const done = await orchestrate(texts, workers, {
    what: `embeddings of ${model}`,
    shardSize: EMBED_LIMITS.batch,
    scheduler: systemScheduler,
    signal,
    isFinal: err => err instanceof TaskInputError,
    isBusy: err => err instanceof PeerBusyError
  })
  const byPeer = new Map<string, number>()
  for (const run of done.shards) byPeer.set(run.peer, (byPeer.get(run.peer) ?? 0) + run.count)
  const servedBy = [...byPeer].sort((a, b) => b[1] - a[1])[0]?.[0] ?? ''
  return { model, dims: dims.value ?? 0, vectors: done.results.map(v => Array.from(v)), servedBy, route: 'network' }
}
