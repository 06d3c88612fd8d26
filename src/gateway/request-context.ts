import type { GatewayMetrics } from '../core/gateway/metrics.ts'
import type { GatewayBackend } from './network-client.ts'
import type { ServerResponse } from 'node:http'

/** One API request as the routes see it. */
export interface RequestContext {
  res: ServerResponse
  backend: GatewayBackend
  metrics: GatewayMetrics
  /** Aborted when the client goes away before the answer is complete: the job on the peer stops with it. */
  signal: AbortSignal
  arrivedAt: number
  /** The model asked for, once the body is read: errors name it (404 or 503). */
  model?: string
  /** Counts an answer's tokens against the key's quota and in the metrics. */
  charge: (promptTokens: number, completionTokens: number) => void
}
