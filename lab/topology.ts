import { RUN_PREFIX, connect, createNamespace, enableForwarding, leftoverNamespaces, removeNamespaces, runIn, setDefaultRoute } from './netns.ts'
import { applyLoss, applyNat, type NatKind } from './nat.ts'

/**
 * The lab's addresses. "Public" ones come from 198.18.0.0/15 (RFC 2544 benchmarking), homes use
 * 10.77.0.0/16; all of them exist only inside the lab's namespaces, which have no link to the
 * machine's own interfaces.
 */
export const INTERNET = `${RUN_PREFIX}inet`
/**
 * Where the lab internet sends what it has no route for. A real internet drops a packet to a private
 * address somewhere on the way; without a default route the kernel answers "network unreachable"
 * instead, and coturn closes a whole TURN allocation on that error (browsers send checks towards
 * each other's host candidates through it). The void namespace receives such packets and, not
 * forwarding, drops them silently.
 */
export const VOID = `${RUN_PREFIX}void`
/** The internet namespace's service address: relay, app server and TURN. */
export const SERVICE_IP = '198.19.0.1'

export interface Home {
  name: string
  kind: NatKind
  /** The namespace Chromium runs in. */
  ns: string
  router: string
  addr: string
  /** The router's public address; NAT rebinding moves it within its /24. */
  publicAddr: string
  index: number
}

export interface Topology {
  homes: Home[]
  remove(): Promise<void>
}

/** Removes whatever this run or an earlier, ended one left behind (found by the lab prefix and owner). */
export async function cleanLeftovers (): Promise<string[]> {
  const left = await leftoverNamespaces()
  await removeNamespaces(left)
  return left
}

/**
 * Builds the internet namespace and one home per entry of `kinds`, each behind its own NAT router:
 * home (10.77.i.2) — router (10.77.i.1 | 198.18.i.2) — internet (198.18.i.1, services on 198.19.0.1).
 * The internet namespace has no route to any 10.77 address: a host candidate of one home is
 * unreachable from every other, as on the real internet.
 */
export async function buildTopology (kinds: NatKind[]): Promise<Topology> {
  const created: string[] = []
  const remove = async (): Promise<void> => { await removeNamespaces(created) }
  try {
    await createNamespace(INTERNET)
    created.push(INTERNET)
    await runIn(INTERNET, 'ip', ['addr', 'add', `${SERVICE_IP}/32`, 'dev', 'lo'])
    await enableForwarding(INTERNET)
    await createNamespace(VOID)
    created.push(VOID)
    await connect({ ns: INTERNET, ifname: 'sink', cidr: '198.18.255.1/24' }, { ns: VOID, ifname: 'eth0', cidr: '198.18.255.2/24' })
    await setDefaultRoute(INTERNET, '198.18.255.2')
    const counts = new Map<NatKind, number>()
    const homes: Home[] = []
    for (const [i, kind] of kinds.entries()) {
      const index = i + 1
      const n = (counts.get(kind) ?? 0) + 1
      counts.set(kind, n)
      const name = `${kind}-${n}`
      const router = `${RUN_PREFIX}r-${name}`
      const ns = `${RUN_PREFIX}h-${name}`
      for (const space of [router, ns]) {
        await createNamespace(space)
        created.push(space)
      }
      const publicAddr = `198.18.${index}.2`
      await connect({ ns: INTERNET, ifname: `wan${index}`, cidr: `198.18.${index}.1/24` }, { ns: router, ifname: 'wan', cidr: `${publicAddr}/24` })
      await connect({ ns: router, ifname: 'lan', cidr: `10.77.${index}.1/24` }, { ns, ifname: 'eth0', cidr: `10.77.${index}.2/24` })
      await enableForwarding(router)
      await setDefaultRoute(router, `198.18.${index}.1`)
      await setDefaultRoute(ns, `10.77.${index}.1`)
      const addr = `10.77.${index}.2`
      await applyNat(router, kind, addr)
      await applyLoss(router)
      homes.push({ name, kind, ns, router, addr, publicAddr, index })
    }
    return { homes, remove }
  } catch (err) {
    await remove()
    throw err
  }
}

/**
 * NAT rebinding: the router's public address changes (a new DHCP lease, a carrier-grade NAT moving
 * the home). MASQUERADE forgets every mapping of the old address, so each flow gets a new one.
 */
export async function rebind (home: Home): Promise<void> {
  const next = home.publicAddr.endsWith('.2') ? `198.18.${home.index}.3` : `198.18.${home.index}.2`
  // Deleting first: a primary address takes its secondaries with it.
  await runIn(home.router, 'ip', ['addr', 'del', `${home.publicAddr}/24`, 'dev', 'wan'])
  await runIn(home.router, 'ip', ['addr', 'add', `${next}/24`, 'dev', 'wan'])
  await setDefaultRoute(home.router, `198.18.${home.index}.1`)
  home.publicAddr = next
}
