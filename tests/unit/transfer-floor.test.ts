import { describe, expect, it } from 'vitest'
import { SlowPeerError } from '../../src/core/errors.ts'
import { BLOCK_TRANSFER_FLOOR, TransferFloorGuard, type TransferFloor } from '../../src/core/jobs/transfer-floor.ts'
import { steppedClock } from './stepped-clock.ts'

const KIB = 1024
/** 64 KiB/s with 5 s of slack: the production floor, written out so the arithmetic below reads plainly. */
const FLOOR: TransferFloor = { bytesPerSecond: 64 * KIB, slackMs: 5_000 }

function guarded (): { clock: ReturnType<typeof steppedClock>, guard: TransferFloorGuard, cut: SlowPeerError[] } {
  const clock = steppedClock()
  const cut: SlowPeerError[] = []
  const guard = new TransferFloorGuard('peer', FLOOR, clock, err => { cut.push(err) })
  return { clock, guard, cut }
}

/** `bytesPerSecond` for `ms`, a message every 100 ms. */
function send (clock: ReturnType<typeof steppedClock>, guard: TransferFloorGuard, bytesPerSecond: number, ms: number): void {
  for (let t = 0; t < ms; t += 100) {
    clock.run(100)
    guard.received(bytesPerSecond / 10)
  }
}

describe('TransferFloorGuard', () => {
  it('is the production floor', () => {
    expect(BLOCK_TRANSFER_FLOOR).toEqual(FLOOR)
  })

  it('never cuts off a peer above the floor, nor one that pauses for less than its slack', () => {
    const { clock, guard, cut } = guarded()
    guard.owe()
    send(clock, guard, 4 * 1024 * KIB, 10_000)
    clock.run(4_900)
    send(clock, guard, 80 * KIB, 60_000)
    expect(cut).toEqual([])
  })

  it('cuts off a peer that sends nothing once its slack has run out: the first-byte deadline', () => {
    const { clock, guard, cut } = guarded()
    guard.owe()
    clock.run(4_999)
    expect(cut).toEqual([])
    clock.run(1)
    expect(cut).toHaveLength(1)
    expect(cut[0]).toBeInstanceOf(SlowPeerError)
    expect(cut[0]?.code).toBe('ERR_SLOW_PEER')
  })

  it('cuts off a trickle under the floor as soon as it falls its slack behind, on a message or by the timer', () => {
    const { clock, guard, cut } = guarded()
    guard.owe()
    // 48 KiB/s is 16 KiB/s short: 320 KiB of slack lasts some 20 s (each message comes 100 ms late).
    send(clock, guard, 48 * KIB, 19_500)
    expect(cut).toEqual([])
    send(clock, guard, 48 * KIB, 500)
    expect(cut).toHaveLength(1)
    // Cut off once: a stream ends once.
    send(clock, guard, 48 * KIB, 10_000)
    expect(cut).toHaveLength(1)
  })

  it('lets a burst buy no more silence than the slack', () => {
    const { clock, guard, cut } = guarded()
    guard.owe()
    clock.run(100)
    guard.received(1024 * KIB)
    clock.run(4_999)
    expect(cut).toEqual([])
    clock.run(1)
    expect(cut).toHaveLength(1)
  })

  it('does not charge the time nothing is owed, and gives each new answer its full slack', () => {
    const { clock, guard, cut } = guarded()
    guard.owe()
    clock.run(4_000)
    guard.received(1)
    guard.settle()
    clock.run(60_000)
    guard.owe()
    clock.run(4_999)
    expect(cut).toEqual([])
    guard.stop()
    clock.run(60_000)
    expect(cut).toEqual([])
  })
})
