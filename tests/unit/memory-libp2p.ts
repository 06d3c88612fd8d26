import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { yamux, type YamuxMuxerInit } from '@libp2p/yamux'
import { createLibp2p, type Libp2p, type ServiceFactoryMap } from 'libp2p'
import type { Startable } from '../../src/core/lifecycle.ts'
import type { PrivateKey, ServiceMap } from '@libp2p/interface'

/**
 * A real libp2p node in this process, as the network tests run them: a memory transport listening
 * on a fresh address, Noise, Yamux, identify, and the services given besides.
 */
export async function memoryLibp2p<S extends ServiceMap = ServiceMap> (name: string, options: { privateKey?: PrivateKey | undefined, services?: ServiceFactoryMap<S>, yamux?: YamuxMuxerInit } = {}): Promise<Libp2p<S>> {
  return await createLibp2p<S>({
    privateKey: options.privateKey ?? await generateKeyPair('Ed25519'),
    addresses: { listen: [`/memory/${name}-${crypto.randomUUID()}`] },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux(options.yamux)],
    services: { identify: identify(), ...options.services } as unknown as ServiceFactoryMap<S>
  })
}

/** Dials `to` from `from` at its listen address. */
export async function connect (from: Libp2p, to: Libp2p): Promise<void> {
  const addr = to.getMultiaddrs()[0]
  if (addr === undefined) throw new Error('no listen address')
  await from.dial(addr)
}

/** A fresh node (identities cost nothing) connected to `target`, kept in `peers` for stopping. */
export async function strangerOf (target: Libp2p, peers: Libp2p[]): Promise<Libp2p> {
  const node = await memoryLibp2p(`stranger-${peers.length}`)
  peers.push(node)
  await connect(node, target)
  return node
}

/** A network test's node: its libp2p and the protocol service under test. */
export interface ServiceNode {
  libp2p: Libp2p
  service: Startable
}

/** Connects each client to the server, then starts every node's service: the server's first. */
export async function startAround (server: ServiceNode, clients: ServiceNode[]): Promise<void> {
  for (const client of clients) await connect(client.libp2p, server.libp2p)
  for (const node of [server, ...clients]) await node.service.start()
}

/** Stops the nodes' services, then the nodes. */
export async function stopNodes (nodes: ServiceNode[]): Promise<void> {
  await stopNodesAfter(nodes, node => [node.service])
}

/** Stops each node's parts, one after another in the order `partsOf` lists them, then the nodes. */
export async function stopNodesAfter<N extends { libp2p: Libp2p }> (nodes: N[], partsOf: (node: N) => Startable[]): Promise<void> {
  for (const node of nodes) {
    for (const part of partsOf(node)) await part.stop()
  }
  await Promise.all(nodes.map(async node => { await node.libp2p.stop() }))
}
