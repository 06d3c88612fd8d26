import { parseArgs } from 'node:util'
import { FAULT_NAMES, runFault, type FaultName, type FaultResult } from './faults.ts'
import { LabCleanup, labPrivilegeError, startLab, type LabEnv } from './lab-env.ts'
import { measurePair, openPair, type OpenPair, type PairResult } from './pairs.ts'
import { checkReport, checkSummary, markdownTable, writeReport } from './report.ts'
import type { NatKind } from './nat.ts'

/**
 * `npm run lab`: browsers behind NATs on a private network of namespaces, with the relay, the app
 * server and coturn on a lab "internet". Measures NAT pairs and faults; writes bench/results/lab.json.
 * `--quick` is the CI-sized part: one cone pair, one symmetric pair (TURN), the relay restart.
 */
const USAGE = `npm run lab -- [--quick] [--check] [--faults a,b] [--cut-seconds 120] [--minutes 40] [--round 6] [--skip-pairs] [--no-delay] [--out bench/results/lab.json]
  --round: the pages' round length in seconds (6; 12 with --quick, which must pass on a loaded machine)
  --no-delay: the homes' links lose 1% but add no delay or jitter (lab/link-delay.ts)
  --check: exit 1 unless the cone pair connected directly and every other pair over WebRTC (directly
           or via TURN), every pair served the inference request and had a pulse round verified, and
           every fault recovered with points counting on
  faults: ${FAULT_NAMES.join(', ')}`

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    quick: { type: 'boolean', default: false },
    faults: { type: 'string' },
    'cut-seconds': { type: 'string' },
    minutes: { type: 'string' },
    round: { type: 'string' },
    out: { type: 'string', default: 'bench/results/lab.json' },
    check: { type: 'boolean', default: false },
    'skip-pairs': { type: 'boolean', default: false },
    'no-delay': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
const privilege = labPrivilegeError()
if (privilege !== undefined) {
  // `npm test` runs the quick check everywhere; a machine where it cannot run says so and goes on (CI runs as root).
  if (values.check && values.quick) {
    console.warn(`lab SKIPPED: ${privilege.message}`)
    process.exit(0)
  }
  throw privilege
}

const quick = values.quick
const faults = (values.faults?.split(',') ?? (quick ? ['relay-restart'] : FAULT_NAMES)) as FaultName[]
for (const fault of faults) if (!FAULT_NAMES.includes(fault)) throw new RangeError(`unknown fault ${fault}\n${USAGE}`)
const cutSeconds = Number(values['cut-seconds'] ?? (quick ? 20 : 120))
const minutes = Number(values.minutes ?? (quick ? 10 : 40))
const roundSeconds = Number(values.round ?? (quick ? 12 : 6))
if (!Number.isInteger(roundSeconds) || roundSeconds < 1) throw new RangeError(`bad --round ${values.round}\n${USAGE}`)

/** Homes by name (cone-1, cone-2, …); the pairs below pick from them. */
const HOME_KINDS: NatKind[] = ['cone', 'cone', 'restricted', 'restricted', 'symmetric', 'symmetric']
const PAIRS: Array<[string, string]> = quick
  ? [['cone-1', 'cone-2'], ['symmetric-1', 'symmetric-2']]
  : [['cone-1', 'cone-2'], ['cone-1', 'restricted-1'], ['restricted-1', 'restricted-2'], ['cone-1', 'symmetric-1'], ['restricted-1', 'symmetric-1'], ['symmetric-1', 'symmetric-2']]
/** The pair the faults hit (page A in the restricted home). */
const FAULT_PAIR: [string, string] = ['restricted-1', 'cone-1']

const cleanup = new LabCleanup('lab', minutes)
const pairs: PairResult[] = []
const faultResults: FaultResult[] = []
let lab: LabEnv | undefined
try {
  lab = await startLab(HOME_KINDS, !values['no-delay'], cleanup)
  const { home, origin } = lab
  for (const [a, b] of values['skip-pairs'] ? [] : PAIRS) {
    const result = await measurePair(home(a), home(b), origin, { roundSeconds })
    console.error(`pair ${a} ↔ ${b}: ${JSON.stringify(result)}`)
    pairs.push(result)
  }

  // tab-hidden runs last, on a pair of its own whose page A is headed on an Xvfb: only there can a tab be hidden.
  const ordered = [...faults.filter(f => f !== 'tab-hidden'), ...faults.filter(f => f === 'tab-hidden')]
  let current: { pair: OpenPair, headed: boolean } | undefined
  for (const fault of ordered) {
    const headed = fault === 'tab-hidden'
    if (current?.headed !== headed) {
      await current?.pair.close()
      const pair = await openPair(home(FAULT_PAIR[0]), home(FAULT_PAIR[1]), origin, { headedA: headed, roundSeconds })
      cleanup.push(pair.close)
      current = { pair, headed }
    }
    const result = await runFault(fault, { pair: current.pair, home: home(FAULT_PAIR[0]), cutSeconds, freezeSeconds: 30, hiddenSeconds: 60, restartRelay: lab.restartRelay })
    console.error(`fault ${fault}: ${JSON.stringify(result)}`)
    faultResults.push(result)
  }
} finally {
  await cleanup.run()
}
const report = { links: lab?.links ?? [], pairs, faults: faultResults }
writeReport(values.out, report)
console.log(markdownTable(report))
if (values.check) {
  const items = checkReport(report)
  for (const item of items) for (const failure of item.failures) console.error(`lab check: ${item.name}: ${failure}`)
  console.log(checkSummary(items))
  process.exit(items.every(item => item.failures.length === 0) ? 0 : 1)
}
