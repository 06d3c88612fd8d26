import { isHostBound, transferListOf, type CallMessage, type ClientBound, type ErrorCodec, type RpcMethod, type RpcPort } from './messages.ts'

export interface HostOptions<Api, Wire> {
  /** What a method threw, as data for the page (the contract's codec). */
  errors: Pick<ErrorCodec<Wire>, 'toWire'>
  /**
   * Methods that run one call at a time in arrival order, because they share one engine (WASM
   * memory, an ORT session); `true` for all. The others run as they come (the clock's timers).
   */
  serial?: true | ReadonlyArray<keyof Api & string>
}

/**
 * Serves `api` on `port` (a worker's global scope, or a MessagePort in tests): the worker's side of
 * the worker RPC. Only `api`'s own function properties are callable, so a message cannot reach
 * `constructor` or anything inherited. Returns a function that stops serving.
 */
export function serveRpc<Api extends { [K in keyof Api]: RpcMethod }, Wire> (port: RpcPort, api: Api, options: HostOptions<Api, Wire>): () => void {
  /** Calls not yet answered, for `abort`: an abort for any other id (one answered already) is ignored. */
  const running = new Map<number, AbortController>()
  let queue: Promise<void> = Promise.resolve()

  const post = (message: ClientBound, list: Transferable[] = []): void => { port.postMessage(message, list) }

  const run = async (call: CallMessage, controller: AbortController): Promise<void> => {
    try {
      const method = Object.hasOwn(api, call.method) ? (api as Record<string, unknown>)[call.method] : undefined
      if (typeof method !== 'function') throw new TypeError(`the worker has no method ${call.method}`)
      const callbacks = Object.fromEntries(call.events.map(name => [name, (value: unknown) => { post({ rpc: 'event', id: call.id, name, value }) }]))
      const value: unknown = await (method as (input: unknown, options: unknown) => Promise<unknown>).call(api, call.input, { ...call.options, ...callbacks, signal: controller.signal })
      post({ rpc: 'return', id: call.id, value }, transferListOf(value))
    } catch (error) {
      post({ rpc: 'throw', id: call.id, error: options.errors.toWire(error) })
    } finally {
      running.delete(call.id)
    }
  }

  const onMessage = (event: Event): void => {
    const message: unknown = (event as MessageEvent).data
    if (!isHostBound(message)) return
    if (message.rpc === 'abort') {
      running.get(message.id)?.abort()
      return
    }
    const controller = new AbortController()
    running.set(message.id, controller)
    if (options.serial === true || options.serial?.includes(message.method as keyof Api & string) === true) queue = queue.then(async () => { await run(message, controller) })
    else void run(message, controller)
  }

  port.addEventListener('message', onMessage)
  return () => {
    port.removeEventListener('message', onMessage)
    for (const controller of running.values()) controller.abort()
    running.clear()
  }
}
