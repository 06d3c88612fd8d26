import { launchInHome, icePaths, openApp, type IcePath, type LabBrowser, type LabPage } from './chromium.ts'
import { announcesInference, currentRound, hasWebRtcPeer, networkChat, pullModel, timeUntil, verifiedSince } from './probes.ts'
import type { NatKind } from './nat.ts'
import type { Home } from './topology.ts'

/** What one pair of homes achieved; the first five fields are the lab.json format. */
export interface PairResult {
  a: NatKind
  b: NatKind
  direct: boolean
  viaTurn: boolean
  /** From both nodes running to the WebRTC connection; null when none formed. */
  ms: number | null
  ice: IcePath[]
  inference: boolean
  pulse: boolean
  error?: string
}

/** Short rounds, so a pulse round fits in the lab's time: network id dev-t6. */
export const ROUND_QUERY = '?round=6'

/** How the pages of a pair open: their round length (seconds) and whether page A runs headed. */
export interface PairOptions {
  roundSeconds?: number
  /** A's browser headed on an Xvfb in its home (launchInHome), for the fault that hides its tab. */
  headedA?: boolean
}

export interface OpenPair {
  a: { browser: LabBrowser, node: LabPage }
  b: { browser: LabBrowser, node: LabPage }
  close(): Promise<void>
}

/** A serves the test model (profile inference), B has none (profile storage): B's chat must cross the pair's path. */
export async function openPair (homeA: Home, homeB: Home, origin: string, options: PairOptions = {}): Promise<OpenPair> {
  const query = options.roundSeconds === undefined ? ROUND_QUERY : `?round=${options.roundSeconds}`
  const browsers: LabBrowser[] = []
  const close = async (): Promise<void> => { await Promise.all(browsers.map(async b => { await b.close() })) }
  try {
    browsers.push(await launchInHome(homeA, origin, { headed: options.headedA === true }))
    browsers.push(await launchInHome(homeB, origin))
    const [browserA, browserB] = browsers as [LabBrowser, LabBrowser]
    const [nodeA, nodeB] = await Promise.all([
      openApp(browserA, `${origin}/${query}&profile=inference`),
      openApp(browserB, `${origin}/${query}&profile=storage`)
    ])
    return { a: { browser: browserA, node: nodeA }, b: { browser: browserB, node: nodeB }, close }
  } catch (err) {
    await close()
    throw err
  }
}

const CONNECT_TIMEOUT_MS = 60_000
const JOB_TIMEOUT_MS = 120_000
const ICE_READ_TIMEOUT_MS = 10_000

export async function measurePair (homeA: Home, homeB: Home, origin: string, options: PairOptions = {}): Promise<PairResult> {
  const result: PairResult = { a: homeA.kind, b: homeB.kind, direct: false, viaTurn: false, ms: null, ice: [], inference: false, pulse: false }
  let pair: OpenPair | undefined
  try {
    pair = await openPair(homeA, homeB, origin, options)
    const { a, b } = pair
    result.ms = await timeUntil(async () => await hasWebRtcPeer(a.node.page, b.node.peerId) && await hasWebRtcPeer(b.node.page, a.node.peerId), CONNECT_TIMEOUT_MS)
    if (result.ms === null) return result
    // Read until a connected peer connection reports its selected pair: a test run once read none
    // at the moment libp2p already counted the connection (symmetric pair via TURN, links delayed).
    await timeUntil(async () => (result.ice = await icePaths(a.node.page)).length > 0, ICE_READ_TIMEOUT_MS, 500)
    result.viaTurn = result.ice.some(p => p.local === 'relay' || p.remote === 'relay')
    result.direct = result.ice.length > 0 && !result.viaTurn
    const round = await currentRound(a.node.page)
    await pullModel(a.node.page)
    if (await timeUntil(async () => await announcesInference(b.node.page, a.node.peerId), JOB_TIMEOUT_MS, 1000) !== null) {
      result.inference = await networkChat(b.node.page) === a.node.peerId
    }
    result.pulse = await timeUntil(async () => await verifiedSince(a.node.page, round) && await verifiedSince(b.node.page, round), JOB_TIMEOUT_MS, 1000) !== null
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0] ?? String(err)
  } finally {
    await pair?.close()
  }
  return result
}
