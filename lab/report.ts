import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { FaultResult } from './faults.ts'
import type { PairResult } from './pairs.ts'

export interface LabReport {
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
  if (report.faults.length > 0) {
    lines.push('', '| fault | recovered ms | points continued | rounds lost | note |', '|---|---|---|---|---|',
      ...report.faults.map(f => `| ${f.fault} | ${msOrDash(f.recoveredMs)} | ${yesNo(f.pointsContinued)} | ${f.roundsLost} | ${[f.note, f.error].filter(s => s !== undefined).join('; ')} |`))
  }
  return lines.join('\n')
}
