import { SlowPeerError } from '../errors.ts'
import type { Scheduler } from '../scheduler.ts'

/** The least a peer owes while an answer of it is awaited: `bytesPerSecond`, with `slackMs` of leeway. */
export interface TransferFloor {
  bytesPerSecond: number
  slackMs: number
}

/**
 * The rate a block provider must keep up. Honest WebRTC paths carry several MiB/s even on a loaded
 * 2-core CI machine, so this is some 50 times below the slowest honest one; and at this rate a 1 MiB
 * block still arrives in 16 s, inside the 30 s answer timeout, so the floor cuts off only a peer that
 * would have spent most of that timeout on one block. A peer pacing itself just above it costs a get
 * at most 16 s per block it is given, where a trickle used to cost 30 s.
 */
export const MIN_BLOCK_BYTES_PER_SECOND = 64 * 1024

/**
 * How far behind the floor a block provider may fall, and so how long it may take to start answering:
 * an honest server's first byte can wait behind its other clients' blocks and an IndexedDB read, and
 * either side's event loop can stall for a moment. Bytes sent ahead bank at most this much silence.
 */
export const BLOCK_TRANSFER_SLACK_MS = 5_000

export const BLOCK_TRANSFER_FLOOR: TransferFloor = { bytesPerSecond: MIN_BLOCK_BYTES_PER_SECOND, slackMs: BLOCK_TRANSFER_SLACK_MS }

/** How long `bytes` may take to go out at the floor: its slack, then the bytes at its rate. */
export function floorTimeMs (bytes: number, floor: TransferFloor): number {
  return floor.slackMs + Math.ceil(bytes * 1000 / floor.bytesPerSecond)
}

/**
 * Holds one peer's answers on one stream to a TransferFloor. While an answer is owed the peer owes
 * `bytesPerSecond`: it starts `slackMs` worth in credit, each byte received pays one back, and credit
 * beyond `slackMs` worth is not kept. A peer whose credit runs out is cut off through `onSlow`, once.
 * That is "within `slackMs` of the floor over any stretch" without a window of samples: one number,
 * checked on each message received and by one timer set for when the credit would run out.
 */
export class TransferFloorGuard {
  /** Bytes the peer is ahead of the floor. */
  private credit = 0
  private chargedAt = 0
  private owing = false
  private stopped = false
  private cancelTimer: (() => void) | undefined

  constructor (
    private readonly peerId: string,
    private readonly floor: TransferFloor,
    private readonly scheduler: Scheduler,
    private readonly onSlow: (err: SlowPeerError) => void
  ) {}

  /** An answer is owed from now; a peer that owed none starts with its full slack. */
  owe (): void {
    if (this.owing || this.stopped) return
    this.owing = true
    this.credit = this.slackBytes
    this.chargedAt = this.scheduler.now()
    this.arm()
  }

  /** Nothing is owed until the next owe(): the peer's idle time between answers is not its fault. */
  settle (): void {
    this.owing = false
    this.cancelTimer?.()
    this.cancelTimer = undefined
  }

  received (bytes: number): void {
    if (!this.owing || !this.charge()) return
    this.credit = Math.min(this.slackBytes, this.credit + bytes)
  }

  /** The stream is done with: no more checks. */
  stop (): void {
    this.stopped = true
    this.settle()
  }

  private get slackBytes (): number {
    return this.floor.bytesPerSecond * this.floor.slackMs / 1000
  }

  /** Charges the time since the last charge; false once the credit ran out (the peer is cut off). */
  private charge (): boolean {
    const now = this.scheduler.now()
    this.credit -= (now - this.chargedAt) * this.floor.bytesPerSecond / 1000
    this.chargedAt = now
    if (this.credit > 0) return true
    this.stop()
    this.onSlow(new SlowPeerError(this.peerId, this.floor.bytesPerSecond, this.floor.slackMs))
    return false
  }

  /** Set for when the credit runs out if nothing arrives; what arrived meanwhile moves it on when it fires. */
  private arm (): void {
    this.cancelTimer = this.scheduler.after(Math.ceil(this.credit * 1000 / this.floor.bytesPerSecond), () => {
      this.cancelTimer = undefined
      if (this.owing && this.charge()) this.arm()
    })
  }
}
