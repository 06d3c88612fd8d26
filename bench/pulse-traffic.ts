import { readFileSync } from 'node:fs'
import { PULSE_K, PULSE_N } from '../src/core/pulse/params.ts'
import { loadProver } from '../workers/prover.ts'
import { figure, recordFigures } from './figures.ts'
import { startCluster, stopCluster, type ClusterNodeSpec } from '../sim/cluster.ts'
import type { Prover } from '../src/core/pulse/reference-prover.ts'

/**
 * Pulse bytes per node per round with 3, 10 and 30 real libp2p nodes in one process (memory
 * transport, GossipSub, n = 256 on the WASM SIMD prover). One validator, as a relay is; the others
 * prove only, as browsers on the default profile do. Counted: pulse payload each node published and
 * each message it received (once); GossipSub framing, forwarding to mesh peers and IHAVE gossip come
 * on top, roughly times the mesh degree for forwarded messages.
 */

/** All nodes share this process's two cores: larger clusters get longer rounds to keep up. */
function roundMsFor (count: number): number {
  return Math.max(6_000, Math.ceil(count / 10) * 4_000)
}
const ROUNDS_MEASURED = 3
const SIZES = [3, 10, 30]

async function wasmProver (): Promise<Prover> {
  const prover = await loadProver({ simd: readFileSync('wasm/build/prover-simd.wasm'), scalar: readFileSync('wasm/build/prover.wasm') })
  return {
    prove: async (round, key, n) => ({ root: prover.prove(key, n, round).root }),
    reveal: async (round, indices) => prover.reveal(indices, round)
  }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

async function measure (count: number): Promise<{ count: number, roundMs: number, sentKiB: number, receivedKiB: number, verifiedShare: number }> {
  const specs: ClusterNodeSpec[] = [{ name: 'validator', validating: true }]
  for (let i = 0; i < count; i++) specs.push({ name: `node-${i}`, prover: await wasmProver(), validating: false })
  const ROUND_MS = roundMsFor(count)
  const nodes = await startCluster(specs, { networkId: `bench-${count}-t${ROUND_MS / 1000}`, roundMs: ROUND_MS, n: PULSE_N, k: PULSE_K })
  try {
    // Two rounds to learn the beacon and settle the mesh, then measure whole rounds.
    const firstMeasured = Math.floor(Date.now() / ROUND_MS) + 3
    await new Promise(resolve => setTimeout(resolve, firstMeasured * ROUND_MS - Date.now()))
    for (const node of nodes) node.traffic = { sent: 0, received: 0 }
    await new Promise(resolve => setTimeout(resolve, ROUNDS_MEASURED * ROUND_MS))
    const provers = nodes.slice(1)
    const perRound = (bytes: number): number => bytes / ROUNDS_MEASURED / 1024
    const rounds = provers.flatMap(node => node.pulse.ledger.history(20)
      .filter(r => r.round >= firstMeasured && r.round < firstMeasured + ROUNDS_MEASURED - 1))
    return {
      count,
      roundMs: ROUND_MS,
      sentKiB: median(provers.map(n => perRound(n.traffic.sent))),
      receivedKiB: median(provers.map(n => perRound(n.traffic.received))),
      verifiedShare: rounds.length === 0 ? 0 : rounds.filter(r => r.verified).length / rounds.length
    }
  } finally {
    await stopCluster(nodes)
  }
}

const results = []
for (const count of SIZES) results.push(await measure(count))
console.log('\nPulse payload per proving node per round (median over nodes; n = 256, k = 8, one validator)')
console.log('nodes | T s | sent KiB | received KiB | received / received at 3 | rounds verified')
const base = results[0]?.receivedKiB ?? 1
for (const r of results) {
  console.log(`${String(r.count).padStart(5)} | ${String(r.roundMs / 1000).padStart(3)} | ${r.sentKiB.toFixed(1).padStart(8)} | ${r.receivedKiB.toFixed(1).padStart(12)} | ${(r.receivedKiB / base).toFixed(2).padStart(25)} | ${(r.verifiedShare * 100).toFixed(0)}%`)
}
console.log('Received bytes grow with the number of nodes (every reveal reaches every node): committees (K > 1) are what keeps this flat.')
const largest = results.at(-1)
if (largest !== undefined && results[0] !== undefined) {
  recordFigures({
    'pulse.realReceivedPerNodeRound': figure(largest.receivedKiB * 1024, 'bytes', `pulse payload received per proving node per round, ${largest.count} real libp2p nodes vs ${results[0].count}`, results[0].receivedKiB * 1024)
  })
}
