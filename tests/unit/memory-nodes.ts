import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { type Libp2p } from 'libp2p'
import {
  decodeMemoryResponse, encodeMemoryRequest, MEMORY_PROTOCOL, MEMORY_RESPONSE_MAX_BYTES, signMemoryPut, type MemoryPut, type MemoryPutBody, type MemoryResponse, type SignedHit
} from '../../src/core/wire/memory.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { Departures } from '../../src/node/departures.ts'
import { MemoryCoordinator } from '../../src/node/memory-coordinator.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { VectorStore } from '../../src/storage/vector-store.ts'
import { openDb } from './helpers.ts'
import { until } from './waiting.ts'
import type { MemoryBudgetLimits } from '../../src/core/memory/limits.ts'
import type { PrivateKey } from '@libp2p/interface'
import { connect, memoryLibp2p } from './memory-libp2p.ts'

/**
 * Real libp2p nodes in one process (memory transport, noise, yamux), each running the real
 * MemoryCoordinator, MemoryService, VectorStore (fake-indexeddb) and Departures. What the capability
 * registry would say is `registry`: the holders started and not stopped, each dated like an
 * announcement. The embedding model is a small deterministic one written here.
 */

export const NETWORK = 'memtest'
export const MODEL = 'bag-of-letters'
export const DIMS = 26

export interface TestNode {
  name: string
  peerId: string
  key: PrivateKey
  libp2p: Libp2p
  store: VectorStore
  memory: MemoryCoordinator
  departures: Departures
}

export interface TestNodeOptions {
  putRate?: { perMinute: number, burst: number }
  budget?: MemoryBudgetLimits
  /** Holds memory for the network (default true); a client that only puts and queries when false. */
  holding?: boolean
  /** Owners with a verified history in the holder's view (default: every owner). */
  established?: (peerId: string) => boolean
  onInvalid?: (peerId: string, reason: string) => void
  /** Called when the holder's copies changed: a re-replication that handed copies off has finished. */
  onChange?: () => void
}

/** The memory peers as the capability registry would list them: peer id → when it was announced. */
export const registry = new Map<string, number>()

/** A text's letter counts: texts sharing letters are close, as with a real model, only cruder. */
export async function embed (texts: string[]): Promise<{ model: string, vectors: number[][] }> {
  return {
    model: MODEL,
    vectors: texts.map(text => {
      const v = new Array<number>(DIMS).fill(0)
      for (const ch of text.toLowerCase()) {
        const i = ch.charCodeAt(0) - 97
        if (i >= 0 && i < DIMS) v[i] = (v[i] as number) + 1
      }
      return v
    })
  }
}

/** A bare libp2p node on the memory transport: the tests' attacker speaks the protocol through it by hand. */
export async function makeLibp2p (name: string, key?: PrivateKey): Promise<Libp2p> {
  return await memoryLibp2p(name, { privateKey: key })
}

export async function makeNode (name: string, options: TestNodeOptions = {}, store?: VectorStore): Promise<TestNode> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await makeLibp2p(name, key)
  const held = store ?? new VectorStore(await openDb(), options.budget)
  const peerId = libp2p.peerId.toString()
  const node = { name, peerId, key, libp2p, store: held } as unknown as TestNode
  node.departures = new Departures(libp2p, systemScheduler, () => { node.memory.peersChanged() })
  node.memory = new MemoryCoordinator(libp2p, {
    networkId: NETWORK,
    scheduler: systemScheduler,
    signer: pulseSigner(key),
    verify: verifyPulseSignature,
    store: held,
    established: options.established ?? (() => true),
    enabled: () => options.holding ?? true,
    peers: () => [...registry].filter(([id, at]) => id !== peerId && node.departures.present(id, at)).map(([id]) => id),
    embed,
    ...(options.putRate !== undefined ? { putRate: options.putRate } : {}),
    ...(options.onInvalid !== undefined ? { onInvalid: options.onInvalid } : {}),
    onChange: options.onChange ?? (() => {})
  })
  return node
}

/** Starts the nodes, connects each pair and lists the holders among them in the registry. */
export async function startAll (nodes: TestNode[], holding: (node: TestNode) => boolean = () => true): Promise<void> {
  for (const node of nodes) {
    await node.memory.start()
    await node.departures.start()
  }
  for (const [i, node] of nodes.entries()) {
    for (const other of nodes.slice(i + 1)) await connect(node.libp2p, other.libp2p)
  }
  await until(() => nodes.filter(holding).every(n => n.store.loaded), 'the stores to load')
  for (const node of nodes.filter(holding)) registry.set(node.peerId, Date.now())
  for (const node of nodes) node.memory.peersChanged()
}

export async function stopNode (node: TestNode): Promise<void> {
  registry.delete(node.peerId)
  await node.departures.stop()
  await node.memory.stop()
  await node.libp2p.stop()
}

/** Sends raw bytes as a request on a new stream and decodes the answer. */
export async function rawRequest (from: Libp2p, to: string, bytes: Uint8Array): Promise<MemoryResponse> {
  const stream = await from.dialProtocol(peerIdFromString(to), MEMORY_PROTOCOL)
  const lp = lpStream(stream, { maxDataLength: MEMORY_RESPONSE_MAX_BYTES })
  await lp.write(bytes)
  const response = decodeMemoryResponse((await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray())
  await stream.close()
  return response
}

/** A put signed by the owner of `key`, as its writer sends it. */
export async function signedPut (key: PrivateKey, body: Omit<MemoryPutBody, 'owner'>, networkId = NETWORK): Promise<MemoryPut> {
  const signer = pulseSigner(key)
  return await signMemoryPut(networkId, { ...body, owner: signer.peerId }, signer)
}

/** Sends a put signed by `key` from `from` to the holder `to` and decodes the answer. */
export async function sendPut (from: Libp2p, to: string, key: PrivateKey, body: Omit<MemoryPutBody, 'owner'>): Promise<MemoryResponse> {
  return await rawRequest(from, to, encodeMemoryRequest(await signedPut(key, body)))
}

/** A put as a holder sends it back in a query's hits: without its type and space. */
export function hitOf (put: MemoryPut): SignedHit {
  return { key: put.key, vector: put.vector, meta: put.meta, version: put.version, owner: put.owner, sig: put.sig }
}
