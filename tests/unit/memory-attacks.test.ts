import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { encodeMemoryRequest, MEMORY_PROTOCOL, type MemoryResponse } from '../../src/core/wire/memory.ts'
import { MEMORY_BUDGET, MEMORY_LIMITS, MEMORY_SERVING } from '../../src/core/memory/limits.ts'
import { pulseSigner } from '../../src/net/pulse-keys.ts'
import { VectorStore } from '../../src/storage/vector-store.ts'
import { closeAll, openDb } from './helpers.ts'
import { DIMS, MODEL, NETWORK, makeLibp2p, makeNode, rawRequest, sendPut, signedPut, startAll, stopNode } from './memory-nodes.ts'
import { connect } from './memory-libp2p.ts'
import { eventually, rejectionOf, until } from './waiting.ts'
import type { Libp2p, PrivateKey, Stream } from '@libp2p/interface'

/**
 * Remote peers attack a memory holder (issue 13): bare libp2p nodes that write memory frames by hand,
 * against a real holder (MemoryCoordinator, MemoryService, VectorStore on fake-indexeddb) that an
 * honest writer (the victim) and another writer (the rival) use through the node API.
 */

/** What the process holds: the JS heap and the array buffers outside it (vectors, indexes). */
function footprint (): number {
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

const MiB = 1024 * 1024
/**
 * What a holder may grow by under each attack here, garbage not yet collected included (about 20 MiB;
 * 1.5 MiB is live after a collection). Before the budgets the space bomb took 800 MiB.
 */
const GROWTH_BOUND = 64 * MiB
const BOMB_DIMS = 4096
const BOMB_SPACES = 50

function unitVector (dims: number, at = 0): Float32Array {
  const v = new Float32Array(dims)
  v[at % dims] = 1
  return v
}

function codes (answers: MemoryResponse[]): string[] {
  return [...new Set(answers.map(a => a.type === 'error' ? a.code : a.type))].sort()
}

afterAll(() => { closeAll() })

/**
 * A real holder, whose store's database a test reloads from, used by two established writers (the
 * victim and the rival), and the attacker: a bare libp2p node with a fresh key, connected to the holder.
 * `invalid` collects what the holder reports as invalid; `established` holds the peers it takes as
 * having a verified pulse history (the honest writers; the attackers' keys are fresh).
 */
async function holderUnderAttack () {
  const invalid: Array<{ peerId: string, reason: string }> = []
  const established = new Set<string>()
  const holderDb = await openDb()
  const holder = await makeNode('holder', {
    onInvalid: (peerId, reason) => { invalid.push({ peerId, reason }) },
    established: peerId => established.has(peerId)
  }, new VectorStore(holderDb))
  const victim = await makeNode('victim', { holding: false })
  const rival = await makeNode('rival', { holding: false })
  established.add(victim.peerId).add(rival.peerId)
  await startAll([holder, victim, rival], n => n === holder)
  const attackerKey = await generateKeyPair('Ed25519')
  const attacker = await makeLibp2p('attacker', attackerKey)
  await connect(attacker, holder.libp2p)

  /** The attacker's put to the holder, signed by its own key unless told otherwise. */
  const attack = async (space: string, key: string, vector: Float32Array, version = 1, signer = attackerKey): Promise<MemoryResponse> =>
    await sendPut(attacker, holder.peerId, signer, { space, key, vector, meta: '', version })

  const stop = async (): Promise<void> => {
    for (const node of [holder, victim, rival]) await stopNode(node)
    await attacker.stop()
  }
  return { holder, holderDb, victim, rival, attacker, attackerKey, invalid, established, attack, stop }
}

describe('attacks on a memory holder', () => {
  let scene: Awaited<ReturnType<typeof holderUnderAttack>>
  beforeAll(async () => { scene = await holderUnderAttack() }, 20_000)
  afterAll(async () => { await scene.stop() })

  it('space bomb: 4,096-dimension puts into 50 fresh spaces allocate only what the budgets admit, on arrival and on reload', async () => {
    const { holder, holderDb, attacker, attack } = scene
    const before = footprint()
    let peak = before
    const answers: MemoryResponse[] = []
    for (let i = 0; i < BOMB_SPACES; i++) {
      answers.push(await attack(`bomb-${i}`, `bomb-${i}`, unitVector(BOMB_DIMS, i)))
      peak = Math.max(peak, footprint())
    }
    console.log(`space bomb, one owner: ${answers.filter(a => a.type === 'stored').length} of ${BOMB_SPACES} stored, holder peak ${(peak / MiB).toFixed(1)} MiB from ${(before / MiB).toFixed(1)} MiB`)
    expect(answers.filter(a => a.type === 'stored')).toHaveLength(MEMORY_BUDGET.owner.spaces)
    expect(codes(answers)).toEqual(['ERR_MEMORY_BUDGET', 'stored'])
    expect(peak - before).toBeLessThan(GROWTH_BOUND)
    const owner = attacker.peerId.toString()
    expect(holder.store.usage(owner)).toEqual({ vectors: 4, spaces: 4, bytes: expect.any(Number) })
    // Indexes hold what they were given: one 16 KiB row per space, not 1,024.
    expect(holder.store.indexBytes).toBeLessThanOrEqual(2 * holder.store.usage().bytes)

    // The same vectors, read back from IndexedDB by a fresh store.
    const reloaded = new VectorStore(holderDb)
    const beforeLoad = footprint()
    await reloaded.load(NETWORK)
    expect(footprint() - beforeLoad).toBeLessThan(GROWTH_BOUND)
    expect(reloaded.usage(owner)).toEqual(holder.store.usage(owner))
  })

  it('space bomb from many identities: fresh keys fill only the newcomers\' pool, and the holder stays small', async () => {
    const { holder, victim, attack } = scene
    await victim.memory.put('before-the-bomb', 'an honest writer was here first')
    const sybils = await Promise.all(Array.from({ length: BOMB_SPACES }, async () => await generateKeyPair('Ed25519')))
    const before = footprint()
    let peak = before
    const answers: MemoryResponse[] = []
    for (const [i, sybil] of sybils.entries()) {
      answers.push(await attack(`sybil-${i}`, `sybil-${i}`, unitVector(BOMB_DIMS, i), 1, sybil))
      peak = Math.max(peak, footprint())
    }
    console.log(`space bomb, ${BOMB_SPACES} owners: ${answers.filter(a => a.type === 'stored').length} stored, holder peak ${(peak / MiB).toFixed(1)} MiB from ${(before / MiB).toFixed(1)} MiB`)
    // The newcomers' spaces and the victim's.
    expect(holder.store.usage().spaces).toBe(MEMORY_BUDGET.newcomers.spaces + 1)
    expect(codes(answers)).toEqual(['ERR_MEMORY_BUDGET', 'stored'])
    expect(answers.filter(a => a.type === 'error').every(a => a.message.includes('without a verified pulse history'))).toBe(true)
    expect(peak - before).toBeLessThan(GROWTH_BOUND)
    // An established writer is still stored, in a space of its own too.
    expect(await victim.memory.put('after-the-bomb', 'still served')).toMatchObject({ stored: 1 })
    expect(await sendPut(victim.libp2p, holder.peerId, victim.key, { space: 'raw-4', key: 'own-space', vector: unitVector(4), meta: '', version: Date.now() })).toEqual({ type: 'stored', key: 'own-space' })
  })

  it('a put older than the version held is refused by name; the same put again is answered held', async () => {
    const { holder, attacker, established, attack } = scene
    // A writer of its own, and an established one: the attacker's key is at its budget of spaces and the newcomers' pool is full.
    const writer = await generateKeyPair('Ed25519')
    established.add(pulseSigner(writer).peerId)
    expect(await attack(MODEL, 'versioned', unitVector(DIMS, 1), 5, writer)).toEqual({ type: 'stored', key: 'versioned' })
    expect(await attack(MODEL, 'versioned', unitVector(DIMS, 2), 3, writer)).toMatchObject({ type: 'error', code: 'ERR_MEMORY_STALE' })
    expect(holder.store.entry('versioned')).toMatchObject({ version: 5 })
    const again = encodeMemoryRequest(await signedPut(writer, { space: MODEL, key: 'versioned', vector: unitVector(DIMS, 3), meta: '', version: 6 }))
    expect(await rawRequest(attacker, holder.peerId, again)).toEqual({ type: 'stored', key: 'versioned' })
    expect(await rawRequest(attacker, holder.peerId, again)).toEqual({ type: 'held', key: 'versioned' })
  })

  it('only the owner replaces a key: not another writer, not a forged signature, not the largest version', async () => {
    const { holder, victim, rival, attacker, attackerKey, invalid, attack } = scene
    await victim.memory.put('mine', 'the victim wrote this', 'victim 1')
    expect(holder.store.entry('mine')).toMatchObject({ owner: victim.peerId })
    const overwrite = await rejectionOf(rival.memory.put('mine', 'the rival overwrote this', 'rival'))
    expect(overwrite).toMatchObject({ code: 'ERR_MEMORY_PUT', message: expect.stringContaining('belongs to another writer') })
    expect(await attack(MODEL, 'mine', unitVector(DIMS), Date.now() + 1_000)).toMatchObject({ type: 'error', code: 'ERR_MEMORY_NOT_OWNER' })
    expect(await attack(MODEL, 'mine', unitVector(DIMS), Number.MAX_SAFE_INTEGER)).toMatchObject({ type: 'error', code: 'ERR_MEMORY_VERSION_AHEAD' })

    // The victim's peer id as owner, signed by the attacker.
    const forged = await signedPut(attackerKey, { space: MODEL, key: 'mine', vector: unitVector(DIMS), meta: '', version: Date.now() + 1_000 })
    const asVictim = encodeMemoryRequest({ ...forged, owner: victim.peerId })
    expect(await rawRequest(attacker, holder.peerId, asVictim)).toMatchObject({ type: 'error', code: 'ERR_BAD_SIGNATURE' })
    expect(invalid.some(i => i.peerId === attacker.peerId.toString() && i.reason.includes('signature'))).toBe(true)
    // A put the victim signed for another network is not good on this one.
    const elsewhere = await signedPut(victim.key, { space: MODEL, key: 'mine', vector: unitVector(DIMS), meta: '', version: Date.now() + 1_000 }, 'another-network')
    expect(await rawRequest(attacker, holder.peerId, encodeMemoryRequest(elsewhere))).toMatchObject({ type: 'error', code: 'ERR_BAD_SIGNATURE' })

    // Not even the owner can put a version far ahead of the holder's clock, which would shut out its own next puts.
    const ahead = await sendPut(victim.libp2p, holder.peerId, victim.key, { space: MODEL, key: 'mine', vector: unitVector(DIMS), meta: '', version: Date.now() + 2 * MEMORY_LIMITS.versionAheadMs })
    expect(ahead).toMatchObject({ type: 'error', code: 'ERR_MEMORY_VERSION_AHEAD' })
    expect(await victim.memory.put('mine', 'the victim wrote this again', 'victim 2')).toMatchObject({ stored: 1 })
    expect(await holder.store.signed('mine')).toMatchObject({ meta: '"victim 2"', owner: victim.peerId })
  })

  it('four free keys that open streams and send nothing take none of the holder\'s places: only their own, and only until the request deadline', async () => {
    const { holder, victim } = scene
    // As the finding had it: four keys, sixteen silent streams each, the holder's 64 places in all.
    const stallers = await Promise.all(Array.from({ length: 4 }, async (_, i) => await makeLibp2p(`staller-${i}`)))
    const honest = encodeMemoryRequest({ type: 'query', space: MODEL, vector: unitVector(DIMS), k: 1 })
    const streams: Stream[] = []
    for (const staller of stallers) {
      await connect(staller, holder.libp2p)
      for (let i = 0; i < 16; i++) streams.push(await staller.dialProtocol(peerIdFromString(holder.peerId), MEMORY_PROTOCOL))
      // Its next request is busy once the holder counts its silent streams: its own places are full.
      await eventually(async () => (await rawRequest(staller, holder.peerId, honest)).type === 'error', 'the staller\'s streams to be counted')
      expect(await rawRequest(staller, holder.peerId, honest)).toMatchObject({ type: 'error', code: 'ERR_PEER_BUSY' })
    }
    expect(await rawRequest(victim.libp2p, holder.peerId, honest)).toMatchObject({ type: 'hits' })
    await eventually(async () => (await rawRequest(stallers[0] as Libp2p, holder.peerId, honest)).type === 'hits', 'the stalled requests to time out', 10_000)
    for (const stream of streams) stream.abort(new Error('done'))
    await Promise.all(stallers.map(async s => { await s.stop() }))
  })

  it('fresh keys\' requests hold at most their share of the places being answered: an established peer\'s put still gets one', async () => {
    const { holder, victim } = scene
    // Every put stays in the store's hands until the gate opens, as under a slow disk.
    let open: () => void = () => {}
    const gate = new Promise<void>(resolve => { open = resolve })
    let waiting = 0
    const put = holder.store.put.bind(holder.store)
    const spy = vi.spyOn(holder.store, 'put').mockImplementation(async (...args) => { waiting++; await gate; return await put(...args) })
    const senders = await Promise.all(Array.from({ length: MEMORY_SERVING.newcomersInFlight / MEMORY_SERVING.maxStreamsPerPeer + 1 }, async (_, i) => {
      const key = await generateKeyPair('Ed25519')
      const node = await makeLibp2p(`flooder-${i}`, key)
      await connect(node, holder.libp2p)
      return { node, key }
    }))
    try {
      const flood = senders.slice(0, -1).flatMap(({ node, key }, i) => Array.from({ length: MEMORY_SERVING.maxStreamsPerPeer }, async (_, j) =>
        await sendPut(node, holder.peerId, key, { space: 'raw-4', key: `flood-${i}-${j}`, vector: unitVector(4), meta: '', version: 1 })))
      await until(() => waiting === MEMORY_SERVING.newcomersInFlight, 'the newcomers\' places to fill')
      const last = senders.at(-1) as { node: Libp2p, key: PrivateKey }
      expect(await sendPut(last.node, holder.peerId, last.key, { space: 'raw-4', key: 'one-more', vector: unitVector(4), meta: '', version: 1 })).toMatchObject({ type: 'error', code: 'ERR_PEER_BUSY' })
      const honest = sendPut(victim.libp2p, holder.peerId, victim.key, { space: 'raw-4', key: 'pushed', vector: unitVector(4), meta: '', version: 1 })
      await until(() => waiting === MEMORY_SERVING.newcomersInFlight + 1, 'the established peer\'s put to be taken')
      open()
      expect(await honest).toEqual({ type: 'stored', key: 'pushed' })
      // Each of the flood's puts was answered in its place (stored, or refused by the newcomers' budgets).
      expect((await Promise.all(flood)).filter(answer => answer.type === 'error' && answer.code === 'ERR_PEER_BUSY')).toEqual([])
    } finally {
      open()
      spy.mockRestore()
      await Promise.all(senders.map(async ({ node }) => { await node.stop() }))
    }
  })
})

describe('budgets of one store', () => {
  it('bounds the bytes of one owner and of the holder, whatever the number of keys', async () => {
    const small = { holder: { vectors: 1_000, bytes: 256 * 1024, spaces: 4 }, owner: { vectors: 1_000, bytes: 100 * 1024, spaces: 4 }, newcomers: { vectors: 1_000, bytes: 256 * 1024, spaces: 4 } }
    const store = new VectorStore(await openDb(), small)
    await store.load(NETWORK)
    const owners = await Promise.all([0, 1, 2, 3].map(async () => await generateKeyPair('Ed25519')))
    const refused: unknown[] = []
    for (const [o, owner] of owners.entries()) {
      for (let i = 0; i < 8; i++) {
        const put = await signedPut(owner, { space: 'raw-4096', key: `o${o}-k${i}`, vector: unitVector(BOMB_DIMS, i), meta: '', version: 1 })
        refused.push(await rejectionOf(store.put(put)))
      }
    }
    // 16 KiB and a little each: six per owner fit 100 KiB, and fifteen fit the holder's 256 KiB.
    expect(owners.map(owner => store.usage(pulseSigner(owner).peerId).vectors)).toEqual([6, 6, 3, 0])
    expect(refused.filter(e => e !== undefined)).toEqual(Array(17).fill(expect.objectContaining({ code: 'ERR_MEMORY_BUDGET' })))
    expect(store.usage().bytes).toBeLessThanOrEqual(small.holder.bytes)
    expect(store.indexBytes).toBeLessThanOrEqual(2 * store.usage().bytes)
    // Deleting frees the owner's budget and shrinks the index with it.
    for (const key of store.keys()) await store.delete(key)
    expect(store.usage()).toEqual({ vectors: 0, bytes: 0, spaces: 0 })
    expect(store.indexBytes).toBe(0)
  })

  it('owners new to the holder share one pool: free identities fill it, not the holder, and established owners are still stored', async () => {
    const small = {
      holder: { vectors: 1_000, bytes: 1024 * 1024, spaces: 8 },
      owner: { vectors: 10, bytes: 1024 * 1024, spaces: 4 },
      newcomers: { vectors: 20, bytes: 1024 * 1024, spaces: 2 }
    }
    const db = await openDb()
    const store = new VectorStore(db, small)
    await store.load(NETWORK)
    const sybils = await Promise.all(Array.from({ length: 5 }, async () => await generateKeyPair('Ed25519')))
    const refused: unknown[] = []
    for (const [o, sybil] of sybils.entries()) {
      for (let i = 0; i < 10; i++) {
        const put = await signedPut(sybil, { space: MODEL, key: `sybil-${o}-${i}`, vector: unitVector(DIMS, i), meta: '', version: 1 })
        refused.push(await rejectionOf(store.put(put, { newcomer: true })))
      }
    }
    expect(store.usage().vectors).toBe(small.newcomers.vectors)
    expect(refused.filter(e => e !== undefined)).toEqual(Array(30).fill(expect.objectContaining({ code: 'ERR_MEMORY_BUDGET', scope: 'newcomers' })))
    // An established owner is not held back by the full pool.
    const established = await generateKeyPair('Ed25519')
    for (let i = 0; i < 10; i++) {
      expect(await store.put(await signedPut(established, { space: MODEL, key: `kept-${i}`, vector: unitVector(DIMS, i), meta: '', version: 1 }))).toBe('stored')
    }
    // A newcomer that became established moves out of the pool when it next replaces its key.
    const first = sybils[0] as PrivateKey
    await store.put(await signedPut(first, { space: MODEL, key: 'sybil-0-0', vector: unitVector(DIMS, 7), meta: '', version: 2 }), { newcomer: false })
    const fresh = await signedPut(await generateKeyPair('Ed25519'), { space: MODEL, key: 'fresh', vector: unitVector(DIMS), meta: '', version: 1 })
    expect(await store.put(fresh, { newcomer: true })).toBe('stored')

    // A reload keeps everything it held: standing is not known yet when a store loads.
    const reloaded = new VectorStore(db, small)
    await reloaded.load(NETWORK)
    expect(reloaded.size).toBe(store.size)
  })

  it('a vector of other dimensions stored first in a space whose name says none does not lock honest writers out of it', async () => {
    const db = await openDb()
    const store = new VectorStore(db)
    await store.load(NETWORK)
    const [squatter, writer] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
    // The deployment's own model: a name no release knows the dimensions of.
    const space = 'deployment-embedder'
    expect(await store.put(await signedPut(squatter, { space, key: 'squat', vector: unitVector(1), meta: '', version: 1 }), { newcomer: true })).toBe('stored')
    expect(await store.put(await signedPut(writer, { space, key: 'honest', vector: unitVector(DIMS, 2), meta: '', version: 1 }))).toBe('stored')
    expect(store.query(space, unitVector(DIMS, 2), 1).map(hit => hit.key)).toEqual(['honest'])
    expect(store.query(space, unitVector(1), 1).map(hit => hit.key)).toEqual(['squat'])
    // A space whose name says its dimensions still refuses others.
    expect(await rejectionOf(store.put(await signedPut(writer, { space: 'raw-4', key: 'wrong', vector: unitVector(3), meta: '', version: 1 })))).toMatchObject({ code: 'ERR_INVALID_VECTOR' })
    const reloaded = new VectorStore(db)
    await reloaded.load(NETWORK)
    expect(reloaded.query(space, unitVector(DIMS, 2), 1).map(hit => hit.key)).toEqual(['honest'])
  })

  it('loads no more than the budgets admit from IndexedDB, and deletes unsigned and surplus records', async () => {
    const db = await openDb()
    const owner = await generateKeyPair('Ed25519')
    // As a holder without budgets kept them: one owner's 4,096-dimension vectors in 50 spaces...
    for (let i = 0; i < BOMB_SPACES; i++) {
      const put = await signedPut(owner, { space: `bomb-${i}`, key: `bomb-${i}`, vector: unitVector(BOMB_DIMS, i), meta: '', version: 1 })
      await db.put('vectors', { networkId: NETWORK, key: put.key, space: put.space, vector: put.vector, meta: put.meta, owner: put.owner, version: put.version, sig: put.sig, storedAt: 0 })
    }
    // ...and a record from before signed puts (memory protocol version 1).
    await db.put('vectors', { networkId: NETWORK, key: 'unsigned', space: MODEL, vector: unitVector(DIMS), meta: '', from: 'someone', storedAt: 0, version: 1 } as never)
    const store = new VectorStore(db)
    const before = footprint()
    await store.load(NETWORK)
    console.log(`filled store reload: ${store.size} loaded, holder ${(footprint() / MiB).toFixed(1)} MiB from ${(before / MiB).toFixed(1)} MiB`)
    expect(footprint() - before).toBeLessThan(GROWTH_BOUND)
    expect(store.size).toBe(MEMORY_BUDGET.owner.spaces)
    expect(store.has('unsigned')).toBe(false)
    expect(await db.count('vectors')).toBe(MEMORY_BUDGET.owner.spaces)
  })
})
