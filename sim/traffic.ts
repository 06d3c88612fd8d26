/**
 * Per-node traffic since the last reset, in and out, broken down by what the RPC carried: the pulse
 * message type of a published message (first copies apart from duplicates: copies that reach a node
 * which has the message already or has an earlier copy on its way), and GossipSub's control messages.
 */

export const DATA_KINDS = ['commit', 'challenge', 'reveal', 'verdict', 'other'] as const
export type DataKind = typeof DATA_KINDS[number]
export const CONTROL_KINDS = ['IHAVE', 'IWANT', 'IDONTWANT'] as const
export type ControlKind = typeof CONTROL_KINDS[number]

/** Every line of the breakdown: each data kind's first copies, its duplicates, then control. */
export type TrafficLine = DataKind | `${DataKind} dup` | ControlKind
export const TRAFFIC_LINES: readonly TrafficLine[] = [...DATA_KINDS, ...DATA_KINDS.map(kind => `${kind} dup` as const), ...CONTROL_KINDS]

const LINE_INDEX = new Map<string, number>(TRAFFIC_LINES.map((line, i) => [line, i]))

export function dataLine (kind: DataKind, duplicate: boolean): TrafficLine {
  return duplicate ? `${kind} dup` : kind
}

/** One node's traffic on one line: bytes and RPCs, in and out. */
export interface LineTraffic {
  bytesIn: number
  bytesOut: number
  rpcsIn: number
  rpcsOut: number
}

export type Breakdown = Record<TrafficLine, { bytes: number, rpcs: number }>

export class Traffic {
  /** Per node and line: bytes in, bytes out, RPCs in, RPCs out. */
  private readonly counters: Float64Array
  private readonly stride = 4 * TRAFFIC_LINES.length

  constructor (capacity: number) {
    this.counters = new Float64Array(capacity * this.stride)
  }

  /** One RPC of `bytes` from one node to another; `arrived` false for a copy lost on the way. */
  rpc (from: number, to: number, bytes: number, line: TrafficLine, arrived = true): void {
    const i = 4 * (LINE_INDEX.get(line) as number)
    const out = from * this.stride + i
    this.counters[out + 1] = (this.counters[out + 1] as number) + bytes
    this.counters[out + 3] = (this.counters[out + 3] as number) + 1
    if (!arrived) return
    const into = to * this.stride + i
    this.counters[into] = (this.counters[into] as number) + bytes
    this.counters[into + 2] = (this.counters[into + 2] as number) + 1
  }

  /** An arrived RPC counted on one line that belongs on another. */
  move (from: number, to: number, bytes: number, was: TrafficLine, is: TrafficLine): void {
    for (const [line, sign] of [[was, -1], [is, 1]] as const) {
      const i = 4 * (LINE_INDEX.get(line) as number)
      const out = from * this.stride + i
      const into = to * this.stride + i
      this.counters[out + 1] = (this.counters[out + 1] as number) + sign * bytes
      this.counters[out + 3] = (this.counters[out + 3] as number) + sign
      this.counters[into] = (this.counters[into] as number) + sign * bytes
      this.counters[into + 2] = (this.counters[into + 2] as number) + sign
    }
  }

  line (node: number, line: TrafficLine): LineTraffic {
    const i = node * this.stride + 4 * (LINE_INDEX.get(line) as number)
    const at = (j: number): number => this.counters[i + j] as number
    return { bytesIn: at(0), bytesOut: at(1), rpcsIn: at(2), rpcsOut: at(3) }
  }

  /** Bytes and RPCs, in and out together, per line. */
  breakdown (node: number): Breakdown {
    const out = {} as Breakdown
    for (const line of TRAFFIC_LINES) {
      const t = this.line(node, line)
      out[line] = { bytes: t.bytesIn + t.bytesOut, rpcs: t.rpcsIn + t.rpcsOut }
    }
    return out
  }

  bytes (node: number): number {
    return this.sum(node, 0) + this.sum(node, 1)
  }

  rpcs (node: number): number {
    return this.sum(node, 2) + this.sum(node, 3)
  }

  reset (): void {
    this.counters.fill(0)
  }

  private sum (node: number, column: number): number {
    let total = 0
    for (let line = 0; line < TRAFFIC_LINES.length; line++) total += this.counters[node * this.stride + 4 * line + column] as number
    return total
  }
}
