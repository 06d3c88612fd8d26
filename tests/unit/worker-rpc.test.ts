import { describe, expect, it, vi } from 'vitest'
import { rpcClient, type RpcFailure } from '../../src/core/worker-rpc/client.ts'
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import { transfer, type CallOptions, type ErrorCodec } from '../../src/core/worker-rpc/messages.ts'
import { workerChannel } from './worker-channel.ts'

/** A small API with each kind of call: plain, streaming, slow and abortable, moving a buffer. */
interface TestApi {
  add: (input: { a: number, b: number }) => Promise<number>
  count: (to: number, options?: CallOptions & { onTick?: (n: number) => void }) => Promise<string>
  wait: (ms: number, options?: CallOptions) => Promise<string>
  bytes: (length: number) => Promise<Uint8Array>
  fail: (message: string) => Promise<never>
}

class NamedError extends Error {
  override name = 'NamedError'
  constructor (readonly kind: string, message: string) { super(message) }
}

const errors: ErrorCodec<{ message: string }> = {
  toWire: error => ({ message: error instanceof Error ? error.message : String(error) }),
  isWire: (value): value is { message: string } => typeof (value as { message?: unknown }).message === 'string',
  fromWire: (wire, what) => new NamedError('worker', `${what}: ${wire.message}`)
}

function setup (serial?: true | Array<keyof TestApi>): { api: TestApi, close: () => void, order: string[], channel: ReturnType<typeof workerChannel> } {
  const channel = workerChannel()
  const order: string[] = []
  const impl: TestApi = {
    async add ({ a, b }) { order.push('add'); await new Promise(resolve => setImmediate(resolve)); return a + b },
    async count (to, options) {
      for (let n = 1; n <= to; n++) options?.onTick?.(n)
      return 'counted'
    },
    wait: async (ms, options) => await new Promise<string>((resolve, reject) => {
      order.push('wait')
      const timer = setTimeout(() => { resolve('waited') }, ms)
      options?.signal?.addEventListener('abort', () => { clearTimeout(timer); reject(new Error('stopped')) })
    }),
    async bytes (length) { return transfer(new Uint8Array(length).fill(7), []) },
    async fail (message) { throw new Error(message) }
  }
  const stop = serveRpc(channel.worker, impl, { errors, serial })
  const client = rpcClient<TestApi, { message: string }>(channel.page, {
    worker: 'the test worker',
    errors,
    failure: (kind: RpcFailure, _what, message) => new NamedError(kind, message),
    methods: {
      add: { what: ({ a, b }) => `add ${a} + ${b}`, isResult: value => typeof value === 'number' },
      count: {},
      wait: { timeoutMs: 2_000 },
      bytes: {},
      fail: {}
    }
  })
  return { api: client.api, order, channel, close: () => { client.close(); stop(); channel.close() } }
}

describe('the worker RPC', () => {
  it('calls, streams events in order before the answer, and moves marked buffers', async () => {
    const { api, close } = setup()
    expect(await api.add({ a: 2, b: 3 })).toBe(5)
    const ticks: number[] = []
    expect(await api.count(4, { onTick: n => ticks.push(n) })).toBe('counted')
    expect(ticks).toEqual([1, 2, 3, 4])
    expect(Array.from(await api.bytes(3))).toEqual([7, 7, 7])
    close()
  })

  it('brings errors back through the codec, named after the call', async () => {
    const { api, close } = setup()
    await expect(api.fail('no such round')).rejects.toMatchObject({ name: 'NamedError', kind: 'worker', message: 'fail: no such round' })
    close()
  })

  it('an abort reaches the method as its signal; the caller is rejected at once', async () => {
    const { api, close } = setup()
    const controller = new AbortController()
    const waiting = api.wait(60_000, { signal: controller.signal })
    controller.abort()
    await expect(waiting).rejects.toMatchObject({ kind: 'aborted' })
    await expect(api.wait(1, { signal: controller.signal })).rejects.toMatchObject({ kind: 'aborted' })
    close()
  })

  it('serial methods run one at a time in arrival order; the others as they come', async () => {
    const serial = setup(true)
    await Promise.all([serial.api.wait(20), serial.api.add({ a: 1, b: 1 })])
    expect(serial.order).toEqual(['wait', 'add'])
    serial.close()
    const some = setup(['wait'])
    await Promise.all([some.api.wait(20), some.api.add({ a: 1, b: 1 })])
    expect(some.order).toEqual(['wait', 'add'])
    // `add` is not serial: it does not wait for the slow call ahead of it.
    let slowDone = false
    const slow = some.api.wait(200).then(() => { slowDone = true })
    await some.api.add({ a: 1, b: 1 })
    expect(slowDone).toBe(false)
    await slow
    some.close()
  })

  it('a call fails when its answer breaks the contract, the worker crashes or the client closes', async () => {
    const { api, channel, close } = setup()
    // A second listener answers `add` wrongly before the host can: the host's own answer then finds nothing pending.
    channel.worker.addEventListener('message', event => {
      const call = (event as MessageEvent<{ rpc: string, id: number, method: string }>).data
      if (call.method === 'add') channel.worker.postMessage({ rpc: 'return', id: call.id, value: 'five' }, [])
    })
    await expect(api.add({ a: 2, b: 3 })).rejects.toMatchObject({ kind: 'malformed', message: 'add 2 + 3: malformed answer from the test worker' })
    const crashed = api.wait(60_000)
    channel.page.dispatchEvent(Object.assign(new Event('error'), { message: 'boom' }))
    await expect(crashed).rejects.toMatchObject({ kind: 'crashed', message: 'the test worker failed: boom' })
    const pending = api.wait(60_000)
    close()
    await expect(pending).rejects.toMatchObject({ kind: 'closed' })
  })

  it('an unknown method is an error, not a crash; inherited names are not methods', async () => {
    const { channel, close } = setup()
    const answers: unknown[] = []
    channel.page.addEventListener('message', event => { answers.push((event as MessageEvent).data) })
    channel.page.postMessage({ rpc: 'call', id: 9, method: 'constructor', input: null, options: {}, events: [] })
    await vi.waitFor(() => { expect(answers).toEqual([{ rpc: 'throw', id: 9, error: { message: 'the worker has no method constructor' } }]) })
    close()
  })
})
