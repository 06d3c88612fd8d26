/**
 * The gateway's numbers, rendered in Prometheus' text exposition format (version 0.0.4) for
 * `GET /metrics`. Label values come from a fixed set (endpoints, statuses, error codes) or from model
 * ids, which are capped so a stream of made-up model names cannot grow the page without bound.
 */

/** Seconds; from a cache hit on a nearby page to a slow model behind a queue. */
const TTFT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const
const MAX_MODEL_LABELS = 256

function escapeLabel (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function labels (pairs: Record<string, string>): string {
  const body = Object.entries(pairs).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')
  return body === '' ? '' : `{${body}}`
}

/** A counter family keyed by its label set. */
class Counter {
  private readonly values = new Map<string, number>()

  constructor (readonly name: string, readonly help: string) {}

  add (pairs: Record<string, string>, n = 1): void {
    const key = labels(pairs)
    this.values.set(key, (this.values.get(key) ?? 0) + n)
  }

  render (): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`]
    for (const [key, value] of this.values) lines.push(`${this.name}${key} ${value}`)
    return lines
  }
}

export class GatewayMetrics {
  private readonly requests = new Counter('hyperspace_gateway_requests_total', 'HTTP requests answered, by endpoint and status.')
  private readonly errors = new Counter('hyperspace_gateway_errors_total', 'Requests that failed, by HTTP status and OpenAI error code.')
  private readonly tokens = new Counter('hyperspace_gateway_tokens_total', 'Tokens of answered requests, by model and kind (prompt, completion).')
  private readonly aborts = new Counter('hyperspace_gateway_client_aborts_total', 'Streams the client closed before the answer was complete.')
  private readonly ttftCounts = TTFT_BUCKETS.map(() => 0)
  private ttftSum = 0
  private ttftCount = 0
  private readonly models = new Set<string>()

  private modelLabel (model: string): string {
    if (this.models.has(model) || this.models.size < MAX_MODEL_LABELS) {
      this.models.add(model)
      return model
    }
    return 'other'
  }

  request (endpoint: string, status: number): void {
    this.requests.add({ endpoint, status: String(status) })
  }

  error (status: number, code: string): void {
    this.errors.add({ status: String(status), code })
  }

  usage (model: string, prompt: number, completion: number): void {
    const label = this.modelLabel(model)
    this.tokens.add({ model: label, kind: 'prompt' }, prompt)
    this.tokens.add({ model: label, kind: 'completion' }, completion)
  }

  clientAbort (): void {
    this.aborts.add({})
  }

  /** Time from the request's arrival to the first text sent to the client. */
  timeToFirstToken (ms: number): void {
    const s = ms / 1000
    TTFT_BUCKETS.forEach((le, i) => { if (s <= le) this.ttftCounts[i] = (this.ttftCounts[i] ?? 0) + 1 })
    this.ttftSum += s
    this.ttftCount++
  }

  /** The whole page; `peersPerModel` is read from the capability registry at scrape time. */
  render (peersPerModel: ReadonlyMap<string, number>): string {
    const ttft = 'hyperspace_gateway_time_to_first_token_seconds'
    const peers = 'hyperspace_gateway_model_peers'
    const lines = [
      ...this.requests.render(),
      ...this.errors.render(),
      ...this.tokens.render(),
      ...this.aborts.render(),
      `# HELP ${ttft} Time from a chat request's arrival to its first text.`,
      `# TYPE ${ttft} histogram`,
      ...TTFT_BUCKETS.map((le, i) => `${ttft}_bucket{le="${le}"} ${this.ttftCounts[i] ?? 0}`),
      `${ttft}_bucket{le="+Inf"} ${this.ttftCount}`,
      `${ttft}_sum ${this.ttftSum}`,
      `${ttft}_count ${this.ttftCount}`,
      `# HELP ${peers} Peers whose capability announcement serves the model now.`,
      `# TYPE ${peers} gauge`,
      ...[...peersPerModel].slice(0, MAX_MODEL_LABELS).map(([model, n]) => `${peers}${labels({ model })} ${n}`)
    ]
    return lines.join('\n') + '\n'
  }
}
