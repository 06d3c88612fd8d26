import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { FaultResult } from './faults.ts'
import type { LinkReport } from './link-delay.ts'
import type { PairResult } from './pairs.ts'

export interface LabReport {
  /** The homes' links: delay and jitter set and applied, loss (empty with --no-delay). */
  links: LinkReport[]
  pairs: PairResult[]
  faults: FaultResult[]
}

export function writeReport (path: string, report: LabReport): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n')
}

const yesNo = (value: boolean): string => value ? 'yes' : 'no'
const msOrDash = (ms: number | null): string => ms === null ? '—' : String(ms)

export function markdownTable (report: LabReport): string {
  const lines = [
    '| pair | direct | via TURN | ms | ICE (A local/remote) | inference | pulse | error |',
    '|---|---|---|---|---|---|---|---|',
    ...report.pairs.map(p => `| ${p.a} ↔ ${p.b} | ${yesNo(p.direct)} | ${yesNo(p.viaTurn)} | ${msOrDash(p.ms)} | ${p.ice.map(i => `${i.local}/${i.remote}`).join(', ') || '—'} | ${yesNo(p.inference)} | ${yesNo(p.pulse)} | ${p.error ?? ''} |`)
  ]
  if (report.links.length > 0) {
    lines.push('', '| home link | RTT added ms | jitter ms | loss % | mean one-way delay up / down ms | packets up / down |', '|---|---|---|---|---|---|',
      ...report.links.map(l => `| ${l.home} | ${l.rttMs} | ±${l.jitterMs} | ${l.lossPercent} | ${msOrDash(l.meanDelayMs.up)} / ${msOrDash(l.meanDelayMs.down)} | ${l.packets.up} / ${l.packets.down} |`))
  }
  if (report.faults.length > 0) {
    lines.push('', '| fault | recovered ms | relay / WebRTC / verified ms | points continued | rounds lost | note |', '|---|---|---|---|---|---|',
      ...report.faults.map(f => `| ${f.fault} | ${msOrDash(f.recoveredMs)} | ${msOrDash(f.steps?.relayMs ?? null)} / ${msOrDash(f.steps?.webrtcMs ?? null)} / ${msOrDash(f.steps?.verifiedMs ?? null)} | ${yesNo(f.pointsContinued)} | ${f.roundsLost} | ${[f.note, f.error].filter(s => s !== undefined).join('; ')} |`))
  }
  return lines.join('\n')
}

/** What one pair or fault failed of `--check`'s requirements (empty when it passed). */
export interface CheckedItem {
  name: string
  failures: string[]
}

/**
 * What `--check` requires: a cone pair connects directly, every other pair over WebRTC one way or
 * the other (two Linux port-restricted NATs often end up on TURN, see the README); every pair
 * serves the inference request and has a pulse round verified; every fault recovers and points go
 * on counting; the hidden tab was hidden and had rounds verified while it was. One item per pair and fault.
 */
export function checkReport (report: LabReport): CheckedItem[] {
  const items: CheckedItem[] = []
  for (const p of report.pairs) {
    const name = `${p.a} ↔ ${p.b}`
    const failures: string[] = []
    const mustBeDirect = p.a === 'cone' && p.b === 'cone'
    if (mustBeDirect ? !p.direct : !(p.direct || p.viaTurn)) failures.push(`no ${mustBeDirect ? 'direct' : 'WebRTC'} connection${p.error !== undefined ? ` (${p.error})` : ''}`)
    if (!p.inference) failures.push('the inference request was not served across the pair')
    if (!p.pulse) failures.push('no pulse round verified')
    items.push({ name, failures })
  }
  for (const f of report.faults) {
    const failures: string[] = []
    if (f.recoveredMs === null) failures.push(`not connected again${f.error !== undefined ? ` (${f.error})` : ''}`)
    else if (!f.pointsContinued) failures.push('points stopped counting')
    if (f.fault === 'tab-hidden') {
      if (f.hidden?.visibilityState !== 'hidden') failures.push(`the page was not hidden (visibilityState ${f.hidden?.visibilityState ?? 'unknown'})`)
      else if (f.hidden.verified === 0) failures.push('no round verified while the page was hidden')
    }
    items.push({ name: f.fault, failures })
  }
  return items
}

/** The closing line of a checked run, in the plain form CI reads: `lab: N passed, N failed`. */
export function checkSummary (items: CheckedItem[]): string {
  const failed = items.filter(item => item.failures.length > 0).length
  return `lab: ${items.length - failed} passed, ${failed} failed`
}
