import type { ContrastResult } from './contrast.ts'
import type { SimSummary } from './summary.ts'
import { TRAFFIC_LINES } from './traffic.ts'

/** The simulator's outputs: a table for the terminal and a chart of bytes per node against N. */

function bytes (value: number): string {
  if (!Number.isFinite(value)) return '-'
  if (value >= 1e9) return `${(value / 1e9).toFixed(1)} GB`
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)} MB`
  return `${(value / 1e3).toFixed(0)} kB`
}

function count (value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-'
}

function percent (value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : '-'
}

function seconds (ms: number): string {
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)}s` : '-'
}

function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i] as number)).join(' | ')
  return [line(header), widths.map(w => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n')
}

const HEADER = ['N', 'K', 'per committee', 'rounds', 'rounds in time', 'honest committed', 'honest verified', 'cheaters caught', 'bytes/node/round med (p99)',
  'msgs/node/round med (p99)', 'commit agreement med (p99)', 'agreed by 0.42T', 'leader disagreement']

function summaryCells (s: SimSummary): string[] {
  return [
    count(s.nodes),
    s.nextCommittees === null || s.nextCommittees === s.committees ? String(s.committees) : `${s.committees}->${s.nextCommittees}`,
    count(s.nodes / s.committees),
    String(s.rounds),
    percent(s.roundsCompletedInTime),
    percent(s.honestCommitted),
    percent(s.honestVerified),
    `${percent(s.cheatersCaught)} (${s.cheatersVerified} passed)`,
    `${bytes(s.bytesPerNodeRound.median)} (${bytes(s.bytesPerNodeRound.p99)})`,
    `${count(s.messagesPerNodeRound.median)} (${count(s.messagesPerNodeRound.p99)})`,
    `${seconds(s.commitAgreementMs.median)} (${seconds(s.commitAgreementMs.p99)})`,
    percent(s.commitAgreedBeforeChallenge),
    percent(s.leaderDisagreement)
  ]
}

/** One row per simulated size, with the traffic the same size would have without committees. */
export function simTable (sizes: SimSummary[], contrasts: ContrastResult[]): string {
  return table([...HEADER, 'no committees: bytes/node/round', 'wall'], sizes.map(s => [
    ...summaryCells(s),
    bytes(contrasts.find(c => c.nodes === s.nodes)?.bytesPerNodeRound ?? Number.NaN),
    `${s.wallSeconds.toFixed(0)}s`
  ]))
}

/** The same figures for runs of one network by different means (the real stack, the model). */
export function comparisonTable (rows: Array<{ label: string, summary: SimSummary }>): string {
  return table(['', ...HEADER], rows.map(r => [r.label, ...summaryCells(r.summary)]))
}

/**
 * Where a node's pulse bytes go, per size: mean and median bytes per node and round of each kind of
 * RPC (data by pulse message type, its duplicates, GossipSub control), with their share of the mean.
 */
export function trafficTable (sizes: SimSummary[]): string {
  const measured = sizes.filter(s => s.traffic !== null)
  const header = ['', ...measured.flatMap(s => [`N = ${count(s.nodes)}: mean`, 'share', 'median', 'RPCs (mean)'])]
  const rows = TRAFFIC_LINES.map(line => [line, ...measured.flatMap(s => {
    const t = s.traffic?.[line]
    const total = s.bytesPerNodeRound.mean
    return t === undefined ? ['-', '-', '-', '-'] : [bytes(t.mean), percent(t.mean / total), bytes(t.median), count(t.rpcs)]
  })])
  rows.push(['total', ...measured.flatMap(s => [bytes(s.bytesPerNodeRound.mean), percent(1), bytes(s.bytesPerNodeRound.median), count(s.messagesPerNodeRound.mean)])])
  return table(header, rows)
}

export interface Series {
  name: string
  color: string
  points: Array<{ nodes: number, bytes: number }>
}

/** A log-log line chart of bytes per node per round against N. */
export function bytesChart (series: Series[]): string {
  const width = 640
  const height = 400
  const margin = { left: 80, right: 20, top: 40, bottom: 50 }
  const all = series.flatMap(s => s.points).filter(p => p.bytes > 0)
  const nMin = Math.min(...all.map(p => p.nodes))
  const nMax = Math.max(...all.map(p => p.nodes))
  const decades = (v: number): number => Math.log10(v)
  const yLow = Math.floor(decades(Math.min(...all.map(p => p.bytes))))
  const yHigh = Math.ceil(decades(Math.max(...all.map(p => p.bytes))))
  const x = (n: number): number => margin.left + (decades(n) - decades(nMin)) / Math.max(1e-9, decades(nMax) - decades(nMin)) * (width - margin.left - margin.right)
  const y = (b: number): number => height - margin.bottom - (decades(b) - yLow) / Math.max(1, yHigh - yLow) * (height - margin.top - margin.bottom)
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">Pulse traffic per node per round (in + out) against network size</text>`,
    `<line x1="${margin.left}" y1="${height - margin.bottom}" x2="${width - margin.right}" y2="${height - margin.bottom}" stroke="black"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${height - margin.bottom}" stroke="black"/>`,
    `<text x="${width / 2}" y="${height - 12}" text-anchor="middle">nodes (N)</text>`
  ]
  for (const n of [...new Set(all.map(p => p.nodes))]) {
    parts.push(`<text x="${x(n)}" y="${height - margin.bottom + 16}" text-anchor="middle">${n.toLocaleString('en-US')}</text>`)
  }
  for (let d = yLow; d <= yHigh; d++) {
    parts.push(`<line x1="${margin.left}" y1="${y(10 ** d)}" x2="${width - margin.right}" y2="${y(10 ** d)}" stroke="#ddd"/>`)
    parts.push(`<text x="${margin.left - 6}" y="${y(10 ** d) + 4}" text-anchor="end">${bytes(10 ** d)}</text>`)
  }
  for (const [i, s] of series.entries()) {
    const points = s.points.filter(p => p.bytes > 0)
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${points.map(p => `${x(p.nodes).toFixed(1)},${y(p.bytes).toFixed(1)}`).join(' ')}"/>`)
    for (const p of points) parts.push(`<circle cx="${x(p.nodes).toFixed(1)}" cy="${y(p.bytes).toFixed(1)}" r="4" fill="${s.color}"><title>${s.name}: ${bytes(p.bytes)} at N = ${p.nodes}</title></circle>`)
    parts.push(`<rect x="${margin.left + 16}" y="${margin.top + 8 + i * 18}" width="12" height="12" fill="${s.color}"/>`)
    parts.push(`<text x="${margin.left + 34}" y="${margin.top + 18 + i * 18}">${s.name}</text>`)
  }
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

/** One row per attack and size: what the attackers got, and what honest nodes kept. */
export function attackTable (rows: Array<{ attack: string, share: number, summary: SimSummary }>): string {
  return table(['attack', 'N', 'attackers', 'honest verified', 'cheaters caught', 'attacker rounds', 'attacker rounds verified', 'attacker presence points', 'honest bonus', 'attacker bonus', 'wall'], rows.map(({ attack, share, summary: s }) => [
    attack,
    count(s.nodes),
    percent(share),
    percent(s.honestVerified),
    percent(s.cheatersCaught),
    count(s.attackerRounds),
    count(s.attackersVerified),
    s.attackerPoints.toFixed(4),
    s.honestBonus.toFixed(3),
    s.attackerBonus.toFixed(3),
    `${s.wallSeconds.toFixed(0)}s`
  ]))
}
