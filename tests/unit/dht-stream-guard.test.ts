import '../../src/relay/polyfills.ts'
import { lpStream, streamPair } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { until } from './waiting.ts'
import { framedMessages, varint } from './length-prefixed.ts'
import { DhtMessageTooLargeError, DhtStreamBudgetError, guardDhtStream } from '../../src/net/dht-stream-guard.ts'
import type { Stream } from '@libp2p/interface'

const MAX = 1000
/** What a stream may receive in all: the test above sends 2 × MAX + 6 messages' bytes, within it. */
const STREAM_MAX = 4 * MAX

/** A message of `length` 0xff bytes with its prefix: a guard that lost track of message starts refuses it. */
const framed = (length: number): Uint8Array => framedMessages([length])

/** The sending end and the guarded receiving end of a stream. */
async function guardedPair (): Promise<{ sender: Stream, receiver: Stream, closed: Promise<unknown> }> {
  const [sender, inbound] = await streamPair()
  const receiver = guardDhtStream(inbound, { maxMessageBytes: MAX, maxStreamBytes: STREAM_MAX })
  const closed = new Promise(resolve => { receiver.addEventListener('close', event => { resolve(event.error) }) })
  return { sender, receiver, closed }
}

describe('guardDhtStream', () => {
  it('lets the reader read every message within the bound, its bytes sent in pieces cut anywhere', async () => {
    const { sender, receiver } = await guardedPair()
    const lengths = [0, 1, 200, MAX, 3, MAX]
    const bytes = Uint8Array.from(lengths.flatMap(length => [...framed(length)]))
    const reader = lpStream(receiver)
    for (let at = 0, piece = 1; at < bytes.length; at += piece, piece = piece * 3 % 17 + 1) sender.send(bytes.subarray(at, at + piece))
    for (const length of lengths) expect((await reader.read()).byteLength).toBe(length)
    expect(receiver.status).toBe('open')
  })

  it('aborts the stream at a prefix over the bound; the reader never gets those bytes', async () => {
    const { sender, receiver, closed } = await guardedPair()
    let received = 0
    receiver.addEventListener('message', event => { received += event.data.byteLength })
    sender.send(Uint8Array.from([...varint(MAX + 1), 1, 2, 3]))
    expect(await closed).toBeInstanceOf(DhtMessageTooLargeError)
    expect(received).toBe(0)
  })

  it('aborts the stream once it received more than its budget in all, every message within the bound', async () => {
    const { sender, receiver, closed } = await guardedPair()
    const reader = lpStream(receiver)
    const read: number[] = []
    const reading = (async () => { for (;;) read.push((await reader.read()).byteLength) })().catch(() => {})
    for (let i = 0; i < 5; i++) sender.send(framed(MAX - 2))
    expect(await closed).toBeInstanceOf(DhtStreamBudgetError)
    await reading
    expect(read).toEqual([MAX - 2, MAX - 2, MAX - 2, MAX - 2])
  })

  it('checks what arrived before the reader listened, once it does, and takes none of it before', async () => {
    const { sender, receiver, closed } = await guardedPair()
    sender.send(framed(10))
    await until(() => receiver.readBufferLength > 0, 'the bytes to wait in the stream')
    const reader = lpStream(receiver)
    expect((await reader.read()).byteLength).toBe(10)
    sender.send(Uint8Array.from(varint(MAX + 1)))
    expect(await closed).toBeInstanceOf(DhtMessageTooLargeError)
  })

  it('checks what arrived while the stream was paused, when it is resumed', async () => {
    const { sender, receiver, closed } = await guardedPair()
    const reader = lpStream(receiver)
    receiver.pause()
    sender.send(Uint8Array.from([...framed(5), ...varint(MAX + 1)]))
    await until(() => receiver.readBufferLength > 0, 'the bytes to wait in the paused stream')
    expect(receiver.status).toBe('open')
    receiver.resume()
    expect(await closed).toBeInstanceOf(DhtMessageTooLargeError)
    await expect(reader.read()).rejects.toThrow()
  })
})
