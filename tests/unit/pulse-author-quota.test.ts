import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AuthorQuota, MESSAGES_PER_AUTHOR } from '../../src/core/pulse/admission.ts'
import { sha256Of, utf8 } from '../../src/core/crypto/bytes.ts'
import { decodePulse, encodeSigned, signPulse, type CommitMessage, type WireMessage } from '../../src/core/wire/pulse.ts'
import { pulseTopic } from '../../src/core/wire/topics.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { startCluster, stopCluster, type ClusterNode } from '../../sim/cluster.ts'
import { until } from './waiting.ts'

/**
 * One author's stream of different signed messages of one kind in one round: an honest node sends
 * one, so past MESSAGES_PER_AUTHOR a node neither keeps nor forwards them (GossipSub's Ignore).
 */

const NET = 'dev-t6'
const ROUND_MS = 6_000
const N = 16

function commit (peer: string, r: number, i: number): CommitMessage {
  return { t: 'commit', net: NET, r, peer, seed: sha256Of(utf8('seed')), root: sha256Of(utf8(`root ${i}`)), n: N, caps: [], sid: new Uint8Array(8) }
}

describe('AuthorQuota', () => {
  it(`takes ${MESSAGES_PER_AUTHOR} messages per topic, round, kind and author, and counts each apart`, () => {
    const quota = new AuthorQuota()
    for (let i = 0; i < MESSAGES_PER_AUTHOR; i++) expect(quota.take('t', commit('a', 5, i))).toBe(true)
    expect(quota.take('t', commit('a', 5, 9))).toBe(false)
    expect(quota.take('other topic', commit('a', 5, 9))).toBe(true)
    expect(quota.take('t', commit('a', 6, 9))).toBe(true)
    expect(quota.take('t', commit('b', 5, 9))).toBe(true)
    expect(quota.take('t', { ...commit('a', 5, 9), t: 'reveal' } as unknown as WireMessage)).toBe(true)
  })

  it('forgets the oldest counts past what it keeps, never growing beyond', () => {
    const quota = new AuthorQuota(4)
    for (let i = 0; i < MESSAGES_PER_AUTHOR; i++) quota.take('t', commit('a', 5, i))
    for (const peer of ['b', 'c', 'd', 'e']) quota.take('t', commit(peer, 5, 0))
    expect(quota.take('t', commit('a', 5, 7))).toBe(true)
    expect((quota as unknown as { counts: Map<string, number> }).counts.size).toBeLessThanOrEqual(4)
  })
})

describe('a stream of one author\'s commits on the real stack', () => {
  let nodes: ClusterNode[] = []

  beforeAll(async () => {
    nodes = await startCluster([{ name: 'watcher', validating: true }, { name: 'flooder', validating: false, anchor: false }], { networkId: NET, roundMs: ROUND_MS, n: N, k: 4 })
  }, 30_000)

  afterAll(async () => { await stopCluster(nodes) })

  it(`is taken and forwarded ${MESSAGES_PER_AUTHOR} times by the peer it reaches, not once per message`, async () => {
    const [watcher, flooder] = nodes as [ClusterNode, ClusterNode]
    const topic = pulseTopic(NET, 0)
    const pubsub = flooder.libp2p.services.pulsePubsub
    await until(() => pubsub.getSubscribers(topic).some(peer => peer.equals(watcher.libp2p.peerId)), 'the watcher on the pulse topic')
    const signer = pulseSigner(flooder.key)
    const round = Math.floor(Date.now() / ROUND_MS)
    // Another author's commit, sent after the stream: once the watcher has taken it, it has judged them all.
    const marker = pulseSigner(await generateKeyPair('Ed25519'))
    const taken = new Map<string, number>()
    watcher.libp2p.services.pulsePubsub.addEventListener('message', evt => {
      if (evt.detail.topic !== topic) return
      void decodePulse(evt.detail.data, verifyPulseSignature).then(signed => {
        if (signed.message.r === round) taken.set(signed.message.peer, (taken.get(signed.message.peer) ?? 0) + 1)
      }, () => {})
    })
    for (let i = 0; i < 40; i++) await pubsub.publish(topic, encodeSigned(await signPulse(commit(signer.peerId, round, i), signer)))
    await pubsub.publish(topic, encodeSigned(await signPulse(commit(marker.peerId, round, 0), marker)))
    await until(() => taken.has(marker.peerId), 'the marker to be taken')
    expect(taken.get(signer.peerId)).toBe(MESSAGES_PER_AUTHOR)
  }, 30_000)
})
