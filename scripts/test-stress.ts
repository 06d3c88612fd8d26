/**
 * `npm run test:stress [-- --runs N] [-- <playwright args>]`: the end-to-end suite on a busy machine.
 * Two CPU-bound processes spin beside Playwright for as long as each run lasts (and never longer than
 * the run's time bound), so tests that lean on timing instead of state fail here first. Runs the
 * suite N times in a row (default 3) and stops at the first failure.
 */
import { spawn, type ChildProcess } from 'node:child_process'

const BURNERS = 2
/** One e2e run takes about 6 minutes on an idle 2-core machine; a loaded one gets three times that. */
const RUN_BOUND_MS = 20 * 60_000

function parseArgs (argv: string[]): { runs: number, playwright: string[] } {
  const at = argv.indexOf('--runs')
  if (at === -1) return { runs: 3, playwright: argv }
  const runs = Number(argv[at + 1])
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError('--runs takes a positive whole number')
  return { runs, playwright: [...argv.slice(0, at), ...argv.slice(at + 2)] }
}

/** A process that keeps one core busy until it is killed or its bound passes. */
function burner (): ChildProcess {
  return spawn(process.execPath, ['-e', `const end = Date.now() + ${RUN_BOUND_MS}; while (Date.now() < end) {}`], { stdio: 'ignore' })
}

async function run (args: string[]): Promise<number> {
  const burners = Array.from({ length: BURNERS }, burner)
  const child = spawn('npx', ['playwright', 'test', ...args], { stdio: 'inherit' })
  const bound = setTimeout(() => { child.kill('SIGTERM') }, RUN_BOUND_MS)
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', code => { resolve(code ?? 1) })
    })
  } finally {
    clearTimeout(bound)
    for (const b of burners) b.kill('SIGKILL')
  }
}

const { runs, playwright } = parseArgs(process.argv.slice(2))
for (let i = 1; i <= runs; i++) {
  console.log(`\ntest:stress: run ${i} of ${runs}, with ${BURNERS} CPU-bound processes beside it`)
  const code = await run(playwright)
  if (code !== 0) {
    console.error(`test:stress: run ${i} failed (exit ${code})`)
    process.exit(code)
  }
}
console.log(`\ntest:stress: ${runs} runs in a row passed`)
