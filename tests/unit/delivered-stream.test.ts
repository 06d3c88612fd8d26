import { describe, expect, it } from 'vitest'
import { StreamDivergedError } from '../../src/core/errors.ts'
import { DeliveredStream } from '../../src/core/inference/delivered-stream.ts'

/** The text a streamed answer passes on across a failover (src/core/inference/delivered-stream.ts). */
describe('DeliveredStream', () => {
  it('passes on only what a taking-over peer adds beyond what was delivered, never a piece twice', () => {
    const stream = new DeliveredStream()
    const first = stream.attempt('peer-a')
    expect(first.started()).toBe(false)
    expect([first.push('Once '), first.push('upon ')]).toEqual(['Once ', 'upon '])
    expect(first.started()).toBe(true)
    // peer-a is lost; peer-b regenerates from the start, in other pieces.
    const second = stream.attempt('peer-b')
    expect(second.push('Once up')).toBe('')
    expect(second.push('on a')).toBe('a')
    expect(second.push(' time')).toBe(' time')
  })

  it('ends the answer with StreamDivergedError, naming both peers, when the peer that takes over writes another text', () => {
    const stream = new DeliveredStream()
    stream.attempt('peer-a').push('The little dog')
    const second = stream.attempt('peer-b')
    expect(second.push('The lit')).toBe('')
    let thrown: unknown
    try {
      second.push('tle cat')
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(StreamDivergedError)
    expect(thrown).toMatchObject({ name: 'StreamDivergedError', code: 'ERR_STREAM_DIVERGED', message: expect.stringContaining('Peer peer-a went away mid-stream and peer peer-b generated a different text') })
  })

  it('a failover before anything was delivered starts clean', () => {
    const stream = new DeliveredStream()
    stream.attempt('peer-a')
    const second = stream.attempt('peer-b')
    expect(second.push('Hello')).toBe('Hello')
  })
})
