import type { TaskProgress } from '../core/tasks/orchestrate.ts'
import type { ChatTaskInput, TaskKind, TaskRequest } from '../core/tasks/request.ts'
import type { ShardRun } from '../core/tasks/shards.ts'
import type { TaskCoordinator } from './task-coordinator.ts'

export type { ChatTaskInput, ShardRun, TaskKind, TaskProgress, TaskRequest }

export interface TaskRunOptions {
  /**
   * local (default): this node orchestrates, over the peers that serve what the task needs and itself
   * when it does; network: a peer whose orchestration works runs the whole batch (`/hyperspace/task/1.0.0`).
   */
  route?: 'local' | 'network'
  /** With route network: only this orchestrator. */
  peer?: string
  signal?: AbortSignal
  /** After each shard: inputs done of the total. */
  onProgress?: (progress: TaskProgress) => void
}

export interface TaskResult {
  kind: TaskKind
  model: string
  /** embed: the vectors' dimensions. */
  dims?: number
  /** One per input, in input order: a vector (embed) or the answer's text (chat). */
  results: number[][] | string[]
  /** The shards as they ran, in input order: which peer, how many inputs, how long (and the job's receipt, when a peer ran it). */
  shards: ShardRun[]
  /** Who orchestrated: this node (local) or the peer that ran the batch (network). */
  orchestratedBy: string
  route: 'local' | 'network'
  /** With route network: the countersigned orchestration receipt's job id (hex). */
  receipt?: string
}

/** Batch jobs split into shards over the peers that serve them. */
export interface TasksApi {
  run(task: TaskRequest, options?: TaskRunOptions): Promise<TaskResult>
}

/** `coordinator` waits for the running session's coordinator, or throws (NodeNotRunningError). */
export function tasksApi (coordinator: () => Promise<TaskCoordinator>): TasksApi {
  return {
    run: async (task, options) => await (await coordinator()).run(task, options)
  }
}
