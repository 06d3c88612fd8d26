import { openNode, type TestNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess, type RelayProcessOptions } from './relay-process.ts'
import { test, type Browser } from '@playwright/test'

/** A relay and pages on it, as most specs begin. */
export interface TestNetwork {
  relay: RelayProcess
  /** The pages opened at the start, in the order their link extras were given. */
  nodes: TestNode[]
  /** Opens one more page on the relay; it is closed with the others. */
  open: (extra?: string) => Promise<TestNode>
  /** Closes every page opened here (one a test closed already is fine) and stops the relay. */
  close: () => Promise<void>
}

/** Starts a relay and opens one page per link extra (e.g. '&profile=storage'), all at once. */
export async function startNetwork (browser: Browser, extras: string[], relayOptions: RelayProcessOptions = {}): Promise<TestNetwork> {
  const relay = await startRelayProcess(relayOptions)
  const opened: TestNode[] = []
  const open = async (extra = ''): Promise<TestNode> => {
    const node = await openNode(browser, [relay.addr], extra)
    opened.push(node)
    return node
  }
  const nodes = await Promise.all(extras.map(open))
  return {
    relay,
    nodes,
    open,
    close: async () => {
      await Promise.all(opened.map(async n => { await n.context.close().catch(() => {}) }))
      await relay.stop()
    }
  }
}

/**
 * The network a serial spec shares: started before its first test, when `onStart` names its pages
 * (and prepares them), and closed after its last. The network returned is usable from then on.
 */
export function sharedNetwork (extras: string[], onStart: (net: TestNetwork) => void | Promise<void>): TestNetwork {
  let net: TestNetwork | undefined
  const started = (): TestNetwork => {
    if (net === undefined) throw new Error('the shared network starts in beforeAll')
    return net
  }
  test.describe.configure({ mode: 'serial' })
  test.beforeAll(async ({ browser }) => {
    net = await startNetwork(browser, extras)
    await onStart(net)
  })
  test.afterAll(async () => { await net?.close() })
  return {
    get relay () { return started().relay },
    get nodes () { return started().nodes },
    open: async extra => await started().open(extra),
    close: async () => { await net?.close() }
  }
}

/** The relay a spec's tests share and the pages they open on it; a test may swap in a restarted relay. */
export interface SharedRelay {
  relay: RelayProcess
  nodes: TestNode[]
}

/** Starts the relay before the spec's first test; after its last, closes the pages in `nodes` and stops the relay. */
export function sharedRelay (): SharedRelay {
  let relay: RelayProcess | undefined
  const shared: SharedRelay = {
    get relay () {
      if (relay === undefined) throw new Error('the shared relay starts in beforeAll')
      return relay
    },
    set relay (next) { relay = next },
    nodes: []
  }
  test.beforeAll(async () => { relay = await startRelayProcess() })
  test.afterAll(async () => {
    await Promise.all(shared.nodes.map(async n => { await n.context.close() }))
    await relay?.stop()
  })
  return shared
}
