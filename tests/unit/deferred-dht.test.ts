import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, describe, expect, it } from 'vitest'
import { hyperspaceDHT } from '../../src/net/dht.ts'
import { deferredDHT, type DeferredDHT } from '../../src/net/deferred-dht.ts'
import { dhtProtocol } from '../../src/core/wire/dht.ts'
import type { KadDHT } from '@libp2p/kad-dht'

/**
 * Real libp2p nodes in one process: a relay-like DHT server started with libp2p, and browser-like
 * clients whose DHT is a DeferredDHT, loaded after they are connected, as a page loads it once online.
 */

const NETWORK = 'dev-deferred'

const started: Libp2p[] = []
afterEach(async () => {
  await Promise.all(started.splice(0).map(async node => { await node.stop() }))
})

function transportOptions (name: string): Pick<Libp2pOptions, 'addresses' | 'transports' | 'connectionEncrypters' | 'streamMuxers'> {
  return {
    addresses: { listen: [`/memory/${name}-${crypto.randomUUID()}`] },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  }
}

async function server (): Promise<Libp2p<{ dht: KadDHT }>> {
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    ...transportOptions('server'),
    services: { identify: identify(), ping: ping(), dht: hyperspaceDHT({ network: NETWORK, dev: true, server: true }) }
  })
  started.push(node)
  return node
}

async function client (name: string): Promise<{ node: Libp2p<{ dht: DeferredDHT }>, imports: () => number }> {
  let imports = 0
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    ...transportOptions(name),
    services: {
      identify: identify(),
      ping: ping(),
      dht: deferredDHT({
        protocol: dhtProtocol(NETWORK),
        importDHT: async () => {
          imports++
          return hyperspaceDHT({ network: NETWORK, dev: true, server: false, initialQuerySelfInterval: 0 })
        }
      })
    }
  })
  started.push(node)
  return { node, imports: () => imports }
}

/** Dials and waits until identify has told the client that the server speaks the DHT protocol. */
async function connect (from: Libp2p, to: Libp2p): Promise<void> {
  await from.dial(to.getMultiaddrs())
  const deadline = Date.now() + 5_000
  while (!(await from.peerStore.get(to.peerId)).protocols.includes(dhtProtocol(NETWORK))) {
    if (Date.now() > deadline) throw new Error('identify did not finish')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function cidOf (text: string): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(text)))
}

describe('DeferredDHT', () => {
  it('loads the DHT on the first content-routing call, with the peers connected before it started', async () => {
    const relay = await server()
    const provider = await client('provider')
    const seeker = await client('seeker')
    await connect(provider.node, relay)
    await connect(seeker.node, relay)
    expect(provider.imports()).toBe(0)

    const cid = await cidOf('a block')
    await provider.node.contentRouting.provide(cid, { signal: AbortSignal.timeout(10_000) })
    expect(provider.imports()).toBe(1)

    const found = []
    for await (const peer of seeker.node.contentRouting.findProviders(cid, { signal: AbortSignal.timeout(10_000) })) {
      found.push(peer.id.toString())
      break
    }
    expect(found).toEqual([provider.node.peerId.toString()])
    expect(seeker.imports()).toBe(1)
  })

  it('load() imports once per run; peer routing waits for it and never loads it', async () => {
    const relay = await server()
    const { node, imports } = await client('walker')
    await connect(node, relay)

    // Pending until the DHT is loaded by someone else.
    const walk = (async () => {
      const peers = []
      for await (const peer of node.peerRouting.getClosestPeers(new Uint8Array(32), { signal: AbortSignal.timeout(10_000) })) peers.push(peer)
      return peers
    })()
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(imports()).toBe(0)

    const aborted = node.peerRouting.getClosestPeers(new Uint8Array(32), { signal: AbortSignal.timeout(50) })
    await expect((async () => { for await (const peer of aborted) return peer })()).rejects.toThrow()
    expect(imports()).toBe(0)

    const [first, second] = await Promise.all([node.services.dht.load(), node.services.dht.load()])
    expect(first).toBe(second)
    expect(imports()).toBe(1)
    expect(first.getMode()).toBe('client')
    await expect(walk).resolves.toBeInstanceOf(Array)
  })

  it('a provide that no DHT server took fails, where kad-dht alone would resolve', async () => {
    const relay = await server()
    const { node } = await client('left-alone')
    await connect(node, relay)
    await node.services.dht.load()
    const cid = await cidOf('nobody to tell')
    await node.contentRouting.provide(cid, { signal: AbortSignal.timeout(10_000) })
    // The server goes away after the DHT knew it: the next provide reaches nobody.
    await relay.stop()
    await expect(node.contentRouting.provide(await cidOf('told nobody'), { signal: AbortSignal.timeout(10_000) })).rejects.toThrow('no DHT server took the provider record')
  })

  it('cancelling a reprovide before anything was provided does not load the DHT', async () => {
    const { node, imports } = await client('idle')
    await node.contentRouting.cancelReprovide(await cidOf('never provided'))
    expect(imports()).toBe(0)
  })
})
