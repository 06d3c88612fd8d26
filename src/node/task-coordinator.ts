import { ServingCoordinator } from './serving-coordinator.ts'
import { jobServiceBase, type ReceiptedJobContext, type ServeLimits } from './job-context.ts'
import { hasUnlimitedConnection } from '../net/job-streams.ts'
import { EmbeddingInputError, InvalidRequestError, PeerBusyError } from '../core/errors.ts'
import { missesOn, routeWithFailover, type Provider } from '../core/jobs/routing.ts'
import { toHex, utf8 } from '../core/crypto/bytes.ts'
import { TaskInputError } from '../core/tasks/errors.ts'
import { orchestrate, type TaskProgress, type TaskWorkers } from '../core/tasks/orchestrate.ts'
import { BatchDims } from '../core/tasks/batch-dims.ts'
import { shardSize, validateTask, type ValidTask } from '../core/tasks/request.ts'
import { TaskService, type OrchestratedTask, type PartSink } from '../net/task-service.ts'
import type { TaskResult, TaskRunOptions } from './tasks-api.ts'
import type { EmbeddingCoordinator } from './embedding-coordinator.ts'
import type { InferenceCoordinator } from './inference-coordinator.ts'
import type { ModelHost } from './model-host.ts'
import type { Availability } from '../core/capabilities.ts'
import type { ValidChatRequest } from '../core/inference/request.ts'
import type { ShardRun } from '../core/tasks/shards.ts'
import type { CapabilityGossip } from '../net/capability-gossip.ts'
import type { Libp2p } from '@libp2p/interface'

export interface TaskCoordinatorOptions extends ReceiptedJobContext {
  gossip: CapabilityGossip
  embedding: EmbeddingCoordinator
  inference: InferenceCoordinator
  models: ModelHost
  /** The orchestration capability is on: this node runs peers' tasks. */
  enabled: () => boolean
  /** The inference capability is on: this node's own chat models may run peers' prompts. */
  inferenceServing: () => boolean
}

/** Peers' tasks run here at once, none waiting; per peer 6 a minute, 2 at once (and one at a time, TaskService). */
const SERVE: ServeLimits = { slots: 2, waiting: 0, perMinute: 6, burst: 2 }
/** The most result bytes this node holds for one peer's task (4,096 vectors of 1,024 dimensions, or answers of that many UTF-8 bytes). */
const PEER_TASK_RESULT_BYTES = 16 * 1024 * 1024
/** Orchestrators tried for one task handed to the network. */
const MAX_ATTEMPTS = 3

/** Errors any worker would give: the task itself is wrong. */
function isFinal (err: unknown): boolean {
  return err instanceof TaskInputError || err instanceof EmbeddingInputError || err instanceof InvalidRequestError
}

/**
 * `tasks.run` of the node (issue 18, orchestration): splits a batch into shards over the peers that
 * serve what it needs and this node when it does, runs them with the embed and inference protocols
 * (each shard ends with that job's own receipt), and merges the results in input order; hands a batch
 * to an orchestrating peer on request, and, with the capability on, orchestrates peers' batches.
 */
export class TaskCoordinator extends ServingCoordinator<TaskService> {
  protected readonly service: TaskService

  constructor (private readonly libp2p: Libp2p, private readonly o: TaskCoordinatorOptions) {
    super()
    this.service = new TaskService(libp2p, {
      ...jobServiceBase(o, SERVE),
      serving: o.enabled,
      run: async (task, client, signal, part) => await this.orchestrateHere(task, { exclude: new Set([client]), forPeer: client, signal, part }),
    })
  }

  /** Working while the task protocol is served and there is something to orchestrate over: a peer or this node serving embeddings or a chat model. */
  availability (): Availability {
    if (!this.service.registered) return { available: false, reason: 'the task protocol is not being served' }
    // Not inferenceServing(): whether inference is on asks the capabilities, which ask this.
    const here = this.o.embedding.availability().available || this.o.models.state().loaded.length > 0
    const peers = this.o.gossip.entries().some(e => e.announcement.capabilities.embedding?.working === true || e.announcement.serving !== undefined)
    return here || peers ? { available: true } : { available: false, reason: 'no peer serves embeddings or a chat model to orchestrate over, and this node does not' }
  }

  async run (input: unknown, options: TaskRunOptions = {}): Promise<TaskResult> {
    const task = validateTask(input)
    const route = options.route ?? 'local'
    if (route !== 'local' && route !== 'network') throw new InvalidRequestError('route must be local or network')
    const self = this.o.signer.peerId
    const { signal, onProgress } = options
    if (route === 'local') {
      const done = await this.orchestrateHere(task, { exclude: new Set(), ...(signal !== undefined ? { signal } : {}), ...(onProgress !== undefined ? { onProgress } : {}) })
      return resultOf(task, done, self, 'local')
    }
    const pinned = options.peer
    if (pinned !== undefined && (typeof pinned !== 'string' || pinned.length > 128 || pinned === self)) throw new InvalidRequestError('peer must be another peer\'s id')
    const routed = await routeWithFailover([async exclude => this.orchestrators(new Set([...exclude, self]), pinned)],
      async provider => await this.service.request(provider.peerId, task, onProgress, signal),
      { model: 'orchestration', maxAttempts: MAX_ATTEMPTS, miss: missesOn(['ERR_PEER_BUSY', 'ERR_ORCHESTRATION_OFF']), established: this.o.established, isFinal, ...(signal !== undefined ? { signal } : {}) })
    const { receipt, ...done } = routed.result
    return { ...resultOf(task, done, routed.provider.peerId, 'network'), ...(receipt !== undefined ? { receipt: toHex(receipt.body.job) } : {}) }
  }

  /**
   * Runs the batch from this node over its workers; a peer's task (`forPeer`) never uses that peer, nor
   * leaves this node, and what it runs here takes places as that peer's own jobs would.
   */
  private async orchestrateHere (task: ValidTask, how: { exclude: ReadonlySet<string>, forPeer?: string, signal?: AbortSignal, onProgress?: (p: TaskProgress) => void, part?: PartSink }): Promise<OrchestratedTask> {
    const self = this.o.signer.peerId
    const common = {
      shardSize: shardSize(task.kind),
      scheduler: this.o.scheduler,
      isFinal,
      isBusy: (err: unknown) => err instanceof PeerBusyError,
      ...(how.signal !== undefined ? { signal: how.signal } : {}),
      ...(how.onProgress !== undefined ? { onProgress: how.onProgress } : {})
    }
    const shards = (runs: ShardRun[]): OrchestratedTask['shards'] => runs.map(r => [r.peer, r.count, Math.round(r.ms)])
    // A stranger's shards wait on other servers as a stranger's jobs would, not with this node's standing.
    const onward = { forStranger: how.forPeer !== undefined && this.o.established?.(how.forPeer) !== true }
    if (task.kind === 'embed') {
      const model = task.model ?? await this.o.embedding.defaultModel()
      const dims = new BatchDims(await this.o.embedding.dimsOf(model))
      const workers: TaskWorkers<string, Float32Array> = {
        candidates: async exclude => {
          const here = !exclude.has(self) && await this.o.embedding.servesHere(model) ? [self] : []
          return [...here, ...this.o.embedding.peers(new Set([...exclude, ...how.exclude]))]
        },
        run: async (worker, texts, signal) => {
          const out: { dims: number, vectors: Float32Array[], receipt?: string } = worker === self
            ? await this.o.embedding.shardHere(texts, { signal, ...(how.forPeer !== undefined ? { forPeer: how.forPeer } : {}) })
            : await this.o.embedding.shardOn(worker, model, texts, { signal, ...onward })
          // A worker of another model (or a liar) is a failed worker; the shard goes to the next one.
          dims.accept(worker, out.dims)
          // A peer's results are held here until the last shard is in (the receipt hashes them all): bounded.
          if (how.forPeer !== undefined && task.inputs.length * out.dims * 4 > PEER_TASK_RESULT_BYTES) throw new TaskInputError(`${task.inputs.length} vectors of ${out.dims} dimensions exceed the ${PEER_TASK_RESULT_BYTES} bytes this node holds for a peer's task`)
          return { results: out.vectors, ...(out.receipt !== undefined ? { receipt: out.receipt } : {}) }
        }
      }
      const done = await orchestrate(task.inputs, workers, { ...common, what: `embeddings of ${model}`, onShard: (shard, results) => how.part?.(shard.start, results, dims.value) })
      return { model, results: done.results, shards: shards(done.shards), runs: done.shards, ...(dims.value !== undefined ? { dims: dims.value } : {}) }
    }
    const model = task.model
    let answerBytes = 0
    const workers: TaskWorkers<ValidChatRequest, string> = {
      candidates: async (exclude, signal) => {
        const local = this.o.models.state().loaded.includes(model) && (how.forPeer === undefined || this.o.inferenceServing())
        const here = !exclude.has(self) && local ? [self] : []
        return [...here, ...await this.o.inference.peersFor(model, new Set([...exclude, ...how.exclude]), { signal })]
      },
      run: async (worker, requests, signal) => {
        const answers = await Promise.all(requests.map(async request => worker === self
          ? { text: await this.o.inference.completeHere(request, { signal, ...(how.forPeer !== undefined ? { forPeer: how.forPeer } : {}) }) }
          : await this.o.inference.completeOn(worker, request, { signal, ...onward })))
        const receipt = answers.map(a => 'receipt' in a ? a.receipt : undefined).find(r => r !== undefined)
        // A peer's answers are held here until the last shard is in, as its vectors are: bounded.
        answerBytes += answers.reduce((sum, a) => sum + utf8(a.text).byteLength, 0)
        if (how.forPeer !== undefined && answerBytes > PEER_TASK_RESULT_BYTES) throw new TaskInputError(`answers of more than ${PEER_TASK_RESULT_BYTES} bytes exceed what this node holds for a peer's task`)
        return { results: answers.map(a => a.text), ...(receipt !== undefined ? { receipt } : {}) }
      }
    }
    const done = await orchestrate(task.inputs, workers, { ...common, what: `chat model ${model}`, onShard: (shard, results) => how.part?.(shard.start, results) })
    return { model, results: done.results, shards: shards(done.shards), runs: done.shards }
  }

  /** Peers whose announcement says their orchestration works (or only the pinned one). */
  private orchestrators (exclude: ReadonlySet<string>, pinned?: string): Provider[] {
    const ids = pinned !== undefined
      ? [pinned]
      : this.o.gossip.entries().filter(e => e.announcement.capabilities.orchestration?.working === true).map(e => e.peerId)
    return ids.filter(id => !exclude.has(id)).map(peerId => ({ peerId, source: 'registry', latencyMs: null, queue: 0, slots: SERVE.slots, connected: hasUnlimitedConnection(this.libp2p, peerId) }))
  }
}

function resultOf (task: ValidTask, done: OrchestratedTask, by: string, route: 'local' | 'network'): TaskResult {
  const shards = done.runs ?? done.shards.map(([peer, count, ms]) => ({ peer, count, ms }))
  const results = task.kind === 'embed' ? (done.results as Float32Array[]).map(v => Array.from(v)) : done.results as string[]
  return { kind: task.kind, model: done.model, ...(done.dims !== undefined ? { dims: done.dims } : {}), results, shards, orchestratedBy: by, route }
}
