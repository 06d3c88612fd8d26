/**
 * The messages of the worker RPC (client.ts on the page, host.ts in a worker). Every method of a
 * worker's API has the shape `method(input?, options?)`: a call carries the input and the options'
 * data, while the options' `signal` becomes `abort` messages and their function fields
 * (`onProgress`, `onDelta`, …) become `event` messages, so both sides share one TypeScript
 * interface. Every message carries `rpc`, which keeps it apart from other traffic on the same port
 * (the pulse worker's clock).
 */

/** What every method of a worker API looks like; the options may hold a signal and callbacks. */
export type RpcMethod = (input: never, options: never) => Promise<unknown>

/** The options every method receives in the worker: the signal is aborted by the caller or its timeout. */
export interface CallOptions {
  signal?: AbortSignal
}

export interface CallMessage {
  rpc: 'call'
  id: number
  method: string
  input: unknown
  /** The options' data: everything but the signal and the callbacks. */
  options: Record<string, unknown>
  /** Names of the callbacks the caller passed in its options. */
  events: string[]
}

/** Stops call `id`: the host aborts the signal it passed to the method. */
export interface AbortMessage {
  rpc: 'abort'
  id: number
}

export interface EventMessage {
  rpc: 'event'
  id: number
  name: string
  value: unknown
}

export interface ReturnMessage {
  rpc: 'return'
  id: number
  value: unknown
}

/** The method threw: `error` is what the contract's error codec made of it. */
export interface ThrowMessage {
  rpc: 'throw'
  id: number
  error: unknown
}

export type HostBound = CallMessage | AbortMessage
export type ClientBound = EventMessage | ReturnMessage | ThrowMessage

/** What both sides need of a MessagePort, a Worker or a worker's global scope. */
export interface RpcPort {
  postMessage: (message: unknown, transfer: Transferable[]) => void
  addEventListener: (type: 'message' | 'error', listener: (event: Event) => void) => void
  removeEventListener: (type: 'message' | 'error', listener: (event: Event) => void) => void
}

/**
 * How a contract's named errors cross the boundary: the host turns what a method threw into data,
 * the client turns that data back into the same named error (`what` names the call, for messages).
 */
export interface ErrorCodec<Wire> {
  toWire: (error: unknown) => Wire
  isWire: (value: unknown) => value is Wire
  fromWire: (wire: Wire, what: string) => Error
}

function fields (message: unknown): Record<string, unknown> | undefined {
  return typeof message === 'object' && message !== null ? message as Record<string, unknown> : undefined
}

function hasId (message: Record<string, unknown>): boolean {
  return Number.isSafeInteger(message.id)
}

export function isHostBound (message: unknown): message is HostBound {
  const m = fields(message)
  if (m === undefined || !hasId(m)) return false
  if (m.rpc === 'abort') return true
  return m.rpc === 'call' && typeof m.method === 'string' && fields(m.options) !== undefined &&
    Array.isArray(m.events) && m.events.every(name => typeof name === 'string')
}

export function isClientBound (message: unknown): message is ClientBound {
  const m = fields(message)
  if (m === undefined || !hasId(m)) return false
  return m.rpc === 'return' || m.rpc === 'throw' || (m.rpc === 'event' && typeof m.name === 'string')
}

const transfers = new WeakMap<object, Transferable[]>()

/**
 * Marks what a host method returns as moved, not copied: `list` (buffers of the value) is
 * transferred with the answer. The method must not use those buffers afterwards.
 */
export function transfer<T extends object> (value: T, list: Transferable[]): T {
  transfers.set(value, list)
  return value
}

export function transferListOf (value: unknown): Transferable[] {
  return typeof value === 'object' && value !== null ? transfers.get(value) ?? [] : []
}
