import { isClientBound, type ClientBound, type ErrorCodec, type RpcMethod, type RpcPort } from './messages.ts'

/**
 * Why a call ended on the page without the worker's answer: the client was closed, the worker
 * crashed or could not be posted to, it stayed silent past the call's timeout, the caller aborted a
 * call that does not wait for the worker, or it answered something its contract does not allow.
 */
export type RpcFailure = 'closed' | 'crashed' | 'timeout' | 'aborted' | 'malformed'

/** How the page treats calls of one method. */
export interface MethodPolicy<Input = never> {
  /** Names the call in error messages (default: the method's name). */
  what?: (input: Input) => string
  /** Fails the call after this long without an event or an answer (a download's progress keeps it alive). */
  timeoutMs?: number
  /**
   * On abort, `reject` at once (the worker stops at its next check and its late answer is ignored)
   * or wait for the worker's `answer` (a stopped completion resolves with the text it has).
   */
  onAbort?: 'reject' | 'answer'
  /** What an answer must look like; anything else fails the call as `malformed`. */
  isResult?: (value: unknown) => boolean
  /** What an event must look like; others are dropped. */
  isEvent?: (name: string, value: unknown) => boolean
}

/** The first parameter of a method. */
type InputOf<M> = M extends (input: infer I, ...rest: never[]) => unknown ? I : never

/** A policy for every method of an API. */
export type MethodPolicies<Api> = { [K in keyof Api]: MethodPolicy<InputOf<Api[K]>> }

export interface ClientOptions<Api, Wire> {
  /** Every method of the API: the client offers exactly these. */
  methods: MethodPolicies<Api>
  errors: Pick<ErrorCodec<Wire>, 'isWire' | 'fromWire'>
  /** Names the worker in messages ("the pulse worker"). */
  worker: string
  /**
   * Sees every answer the worker gives, including one that arrives after its call was aborted or
   * timed out, for a client that mirrors the worker's state (which model it serves).
   */
  settled?: (method: keyof Api & string, value: unknown) => void
  /** The contract's own error for a call that ended on the page; `what` names the call. */
  failure: (kind: RpcFailure, what: string, message: string) => Error
}

export interface RpcClient<Api> {
  /** The worker's API, as the worker implements it. */
  readonly api: Api
  /** Stops listening; pending calls fail as `closed`. The worker belongs to whoever created it. */
  close: () => void
}

interface Pending {
  method: string
  what: string
  policy: MethodPolicy<unknown>
  callbacks: Record<string, (value: unknown) => void>
  resolve: (value: unknown) => void
  reject: (error: Error) => void
  /** Restarts the timeout. */
  touch: () => void
  clear: () => void
}

/** Ids start at a random point, so two clients on one worker (the scheduler's and the prover's) do not collide. */
function firstId (): number {
  return 1 + Math.floor(Math.random() * 2 ** 40)
}

function describeError (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** The page's side of the worker RPC: an object with the worker API's methods, each a message to `port`. */
export function rpcClient<Api extends { [K in keyof Api]: RpcMethod }, Wire> (port: RpcPort, options: ClientOptions<Api, Wire>): RpcClient<Api> {
  const pending = new Map<number, Pending>()
  /** Calls given up on the page whose answer may still come, for `settled` (kept only when it is set). */
  const abandoned = new Map<number, string>()
  let nextId = firstId()
  let closed = false

  const settle = (id: number): Pending | undefined => {
    const entry = pending.get(id)
    if (entry === undefined) return undefined
    pending.delete(id)
    entry.clear()
    return entry
  }

  const abandon = (id: number): Pending | undefined => {
    const entry = settle(id)
    if (entry !== undefined && options.settled !== undefined) abandoned.set(id, entry.method)
    return entry
  }

  const failAll = (error: Error): void => {
    for (const id of [...pending.keys()]) settle(id)?.reject(error)
  }

  const call = (method: string, policy: MethodPolicy<unknown>, input: unknown, callOptions: Record<string, unknown> | undefined): Promise<unknown> => {
    const what = policy.what?.(input) ?? method
    if (closed) return Promise.reject(options.failure('closed', what, `${what}: the client of ${options.worker} was closed`))
    const { signal, ...rest } = callOptions ?? {}
    const abortSignal = signal instanceof AbortSignal ? signal : undefined
    if (abortSignal?.aborted === true) return Promise.reject(options.failure('aborted', what, `${what}: aborted`))
    const data: Record<string, unknown> = {}
    const callbacks: Record<string, (value: unknown) => void> = {}
    for (const [key, value] of Object.entries(rest)) {
      if (typeof value === 'function') callbacks[key] = value as (value: unknown) => void
      else if (value !== undefined) data[key] = value
    }
    const id = nextId++
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const abort = (): void => { port.postMessage({ rpc: 'abort', id }, []) }
      const onAbort = (): void => {
        if (policy.onAbort === 'answer') {
          abort()
          return
        }
        if (abandon(id) === undefined) return
        abort()
        reject(options.failure('aborted', what, `${what}: aborted`))
      }
      const touch = (): void => {
        if (policy.timeoutMs === undefined) return
        clearTimeout(timer)
        timer = setTimeout(() => {
          if (abandon(id) === undefined) return
          abort()
          reject(options.failure('timeout', what, `${what}: no answer from ${options.worker} in ${policy.timeoutMs} ms`))
        }, policy.timeoutMs)
      }
      const clear = (): void => {
        clearTimeout(timer)
        abortSignal?.removeEventListener('abort', onAbort)
      }
      pending.set(id, { method, what, policy, callbacks, resolve, reject, touch, clear })
      abortSignal?.addEventListener('abort', onAbort, { once: true })
      touch()
      try {
        port.postMessage({ rpc: 'call', id, method, input, options: data, events: Object.keys(callbacks) }, [])
      } catch (error) {
        settle(id)
        reject(options.failure('crashed', what, `${what}: could not post to ${options.worker}: ${describeError(error)}`))
      }
    })
  }

  const answer = (message: ClientBound): void => {
    if (message.rpc === 'event') {
      const entry = pending.get(message.id)
      if (entry === undefined || entry.policy.isEvent?.(message.name, message.value) === false) return
      entry.touch()
      entry.callbacks[message.name]?.(message.value)
      return
    }
    const entry = settle(message.id)
    const late = abandoned.get(message.id)
    abandoned.delete(message.id)
    const method = entry?.method ?? late
    const valid = message.rpc === 'return' && entry?.policy.isResult?.(message.value) !== false
    if (method !== undefined && valid) options.settled?.(method as keyof Api & string, message.value)
    if (entry === undefined) return
    if (message.rpc === 'throw') {
      entry.reject(options.errors.isWire(message.error)
        ? options.errors.fromWire(message.error, entry.what)
        : options.failure('malformed', entry.what, `${entry.what}: ${options.worker} failed with an error its contract does not know`))
    } else if (!valid) {
      entry.reject(options.failure('malformed', entry.what, `${entry.what}: malformed answer from ${options.worker}`))
    } else {
      entry.resolve(message.value)
    }
  }

  const onMessage = (event: Event): void => {
    const message: unknown = (event as MessageEvent).data
    if (isClientBound(message)) answer(message)
  }

  /** An uncaught error in the worker (its script failing to load, say): nothing pending will be answered. */
  const onError = (event: Event): void => {
    const message = (event as { message?: unknown }).message
    failAll(options.failure('crashed', options.worker, `${options.worker} failed: ${typeof message === 'string' && message !== '' ? message : 'uncaught error'}`))
  }

  port.addEventListener('message', onMessage)
  port.addEventListener('error', onError)

  const api = Object.fromEntries(Object.entries(options.methods as Record<string, MethodPolicy<unknown>>).map(([method, policy]) =>
    [method, (input?: unknown, callOptions?: Record<string, unknown>) => call(method, policy, input, callOptions)]))

  return {
    api: api as unknown as Api,
    close () {
      if (closed) return
      closed = true
      port.removeEventListener('message', onMessage)
      port.removeEventListener('error', onError)
      failAll(options.failure('closed', options.worker, `the client of ${options.worker} was closed`))
    }
  }
}
