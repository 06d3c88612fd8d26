import type { Rng } from './rng.ts'

/**
 * Where nodes are and what their connections can do. One-way latency between two nodes is half the
 * round-trip time between their regions plus each end's access latency; each node's uplink has its
 * own bandwidth, and every transmission may be lost.
 *
 * Region round-trip times are rounded from public inter-continent ping tables (e.g. WonderNetwork);
 * access latency and upload bandwidth are log-normal. Upload: median 20 Mbit/s, between the fixed
 * (~50) and mobile (~12) medians speed-test indices report, with a long slow tail (5% below
 * 4.5 Mbit/s, floor 1 Mbit/s). Downlinks are not modelled as a bottleneck: they are typically
 * several times faster than uplinks, and a node receives each large message about once (IDONTWANT).
 */
export interface LinkParams {
  /** Share of nodes per region: North America, Europe, Asia, South America, Oceania, Africa. */
  regionShare: readonly number[]
  /** Round-trip time between regions, ms. */
  regionRttMs: ReadonlyArray<readonly number[]>
  accessMedianMs: number
  accessSigma: number
  uplinkMedianMbps: number
  uplinkSigma: number
  uplinkMinMbps: number
  /** Probability that one transmission is lost. */
  loss: number
}

export const REALISTIC_LINKS: LinkParams = {
  regionShare: [0.25, 0.30, 0.30, 0.07, 0.03, 0.05],
  regionRttMs: [
    [40, 90, 160, 130, 170, 200],
    [90, 25, 180, 200, 280, 120],
    [160, 180, 60, 300, 130, 250],
    [130, 200, 300, 50, 300, 320],
    [170, 280, 130, 300, 30, 350],
    [200, 120, 250, 320, 350, 60]
  ],
  accessMedianMs: 10,
  accessSigma: 0.5,
  uplinkMedianMbps: 20,
  uplinkSigma: 0.9,
  uplinkMinMbps: 1,
  loss: 0.01
}

/** What the real-libp2p mode runs on: one process, memory transport, no latency and no loss. */
export const IN_PROCESS_LINKS: LinkParams = {
  regionShare: [1],
  regionRttMs: [[0]],
  accessMedianMs: 0.05,
  accessSigma: 0,
  uplinkMedianMbps: 10_000,
  uplinkSigma: 0,
  uplinkMinMbps: 10_000,
  loss: 0
}

export class Links {
  private readonly region: Uint8Array
  private readonly accessMs: Float64Array
  /** Uplink bandwidth in bytes per ms. */
  readonly uplink: Float64Array
  private readonly oneWayMs: Float64Array

  /** `capacity`: how many nodes a run may have in all, joiners included. */
  constructor (private readonly params: LinkParams, private readonly rng: Rng, capacity: number) {
    this.region = new Uint8Array(capacity)
    this.accessMs = new Float64Array(capacity)
    this.uplink = new Float64Array(capacity)
    const regions = params.regionShare.length
    this.oneWayMs = new Float64Array(regions * regions)
    for (let a = 0; a < regions; a++) for (let b = 0; b < regions; b++) this.oneWayMs[a * regions + b] = (params.regionRttMs[a]?.[b] ?? 0) / 2
  }

  get loss (): number { return this.params.loss }

  /** Draws the links of node `i` (nodes are numbered in the order they join). */
  add (i: number): void {
    this.region[i] = this.rng.weighted(this.params.regionShare)
    this.accessMs[i] = this.rng.lognormal(this.params.accessMedianMs, this.params.accessSigma)
    const mbps = Math.max(this.params.uplinkMinMbps, this.rng.lognormal(this.params.uplinkMedianMbps, this.params.uplinkSigma))
    this.uplink[i] = mbps * 1e6 / 8 / 1000
  }

  latencyMs (a: number, b: number): number {
    const regions = this.params.regionShare.length
    return (this.oneWayMs[(this.region[a] as number) * regions + (this.region[b] as number)] as number) + (this.accessMs[a] as number) + (this.accessMs[b] as number)
  }
}
