import { contrast, type ContrastConfig, type ContrastResult } from './contrast.ts'
import { Simulation, type SimConfig } from './simulation.ts'
import { summarize, type SimSummary } from './summary.ts'

export type Job = { kind: 'sim', config: SimConfig } | { kind: 'contrast', config: ContrastConfig }
export type JobResult = { kind: 'sim', summary: SimSummary } | { kind: 'contrast', result: ContrastResult }

/** A child process of pool.ts: one simulation or contrast run per message, on its own core. */
process.on('message', (job: Job) => {
  const run = async (): Promise<JobResult> => job.kind === 'sim'
    ? { kind: 'sim', summary: summarize(await new Simulation(job.config).run()) }
    : { kind: 'contrast', result: await contrast(job.config) }
  run().then(result => { process.send?.(result) }, (err: unknown) => {
    console.error(err)
    process.exit(1)
  })
})
