import { HyperspaceError } from '../errors.ts'

/** Errors of batch tasks (`tasks.run`, `/hyperspace/task/1.0.0`). */

/** The task itself is wrong: its kind, its model, too many or too large inputs. No peer would take it. */
export class TaskInputError extends HyperspaceError {
  override name = 'TaskInputError'

  constructor (message: string) { super('ERR_TASK_INPUT', message) }
}

/** Nobody can run the task's shards: no peer serves what it needs and this node does not either. */
export class NoTaskWorkerError extends HyperspaceError {
  override name = 'NoTaskWorkerError'

  constructor (what: string, tried: readonly string[] = []) {
    super('ERR_NO_TASK_WORKER', tried.length === 0
      ? `No peer serves ${what}, and this node does not`
      : `No peer could run shards of ${what}; tried ${tried.join('; ')}`)
  }
}

/** A shard failed on every worker it was given to, up to its attempts: the task stops. */
export class TaskShardFailedError extends HyperspaceError {
  override name = 'TaskShardFailedError'

  constructor (shard: number, attempts: readonly string[]) {
    super('ERR_TASK_SHARD_FAILED', `Shard ${shard} failed ${attempts.length} times: ${attempts.join('; ')}`)
  }
}

/** A peer was asked to orchestrate a task while its orchestration capability is off. */
export class OrchestrationOffError extends HyperspaceError {
  override name = 'OrchestrationOffError'

  constructor (peerId: string) { super('ERR_ORCHESTRATION_OFF', `Peer ${peerId} does not orchestrate tasks for peers`) }
}
