import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LabPrivilegeError } from './errors.ts'
import { delayLink, linkProfile, type LinkReport } from './link-delay.ts'
import { startLabRelay, startLabSite, startLabTurn, SITE_PORT, type Service } from './services.ts'
import { buildTopology, cleanLeftovers, SERVICE_IP, type Home } from './topology.ts'
import type { NatKind } from './nat.ts'

/** Root on Linux, or a LabPrivilegeError saying why the lab cannot run. */
export function labPrivilegeError (): LabPrivilegeError | undefined {
  if (process.platform === 'linux' && process.getuid?.() === 0) return undefined
  return new LabPrivilegeError('the lab needs root on Linux: it creates network namespaces, veth pairs and NAT rules')
}

/**
 * What a run must undo, undone in reverse order exactly once, however the run ends: normally, on an
 * error, on Ctrl-C or SIGTERM, or past its time bound (then the process exits with 124).
 */
export class LabCleanup {
  private readonly undos: Array<() => Promise<void>> = []
  private cleaning?: Promise<void>
  private deadline?: NodeJS.Timeout

  constructor (name: string, boundMinutes: number) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => { void this.run().finally(() => process.exit(130)) })
    }
    // A crash still takes the lab's namespaces, NAT rules and processes down with it.
    process.once('uncaughtException', err => {
      console.error(`${name}: crashed`, err)
      void this.run().finally(() => process.exit(1))
    })
    this.deadline = setTimeout(() => {
      console.error(`${name}: over its ${boundMinutes} minute bound, stopping`)
      void this.run().finally(() => process.exit(124))
    }, boundMinutes * 60_000)
  }

  push (undo: () => Promise<void>): void {
    this.undos.push(undo)
  }

  async run (): Promise<void> {
    clearTimeout(this.deadline)
    this.cleaning ??= (async () => {
      for (const undo of this.undos.reverse()) await undo().catch(err => { console.error(`cleanup: ${(err as Error).message}`) })
      await cleanLeftovers().catch(() => undefined)
    })()
    await this.cleaning
  }
}

export interface LabEnv {
  homes: Home[]
  home(name: string): Home
  /** The app server's origin. */
  origin: string
  /** Kills the relay (as a crashed host) and starts it again with the same key. */
  restartRelay(): Promise<void>
  /** The homes' links as measured; filled in when the cleanup stops them. */
  links: LinkReport[]
}

/**
 * The lab's network (homes behind NATs, their links delayed unless `delay` is false) and its
 * services (coturn, the relay, the app server), each registered with `cleanup`.
 */
export async function startLab (kinds: NatKind[], delay: boolean, cleanup: LabCleanup): Promise<LabEnv> {
  const left = await cleanLeftovers()
  if (left.length > 0) console.error(`removed leftovers of an earlier run: ${left.join(', ')}`)
  const topology = await buildTopology(kinds)
  cleanup.push(topology.remove)
  const links: LinkReport[] = []
  if (delay) {
    for (const home of topology.homes) {
      const link = await delayLink(home, linkProfile(home.index))
      // Stopped before the namespaces go (cleanups run in reverse), so its figures can be read.
      cleanup.push(async () => { links.push(await link.stop()) })
    }
  }
  const turn = await startLabTurn()
  cleanup.push(turn.stop)
  const keyDir = mkdtempSync(join(tmpdir(), 'hslab-relay-'))
  cleanup.push(async () => { rmSync(keyDir, { recursive: true, force: true }) })
  const keyFile = join(keyDir, 'relay.key')
  let relay: Service = await startLabRelay(keyFile)
  cleanup.push(async () => { await relay.stop() })
  const site = await startLabSite(relay.ready, turn.iceServers)
  cleanup.push(site.stop)
  const origin = `http://${SERVICE_IP}:${SITE_PORT}`
  console.error(`lab up: relay ${relay.ready}, app ${origin}, TURN ${turn.iceServers.map(s => String(s.urls)).join(' ')}`)
  return {
    homes: topology.homes,
    home: (name: string): Home => {
      const found = topology.homes.find(h => h.name === name)
      if (found === undefined) throw new RangeError(`no home ${name}`)
      return found
    },
    origin,
    restartRelay: async () => {
      await relay.kill()
      relay = await startLabRelay(keyFile)
    },
    links
  }
}
