import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Job, JobResult } from './worker.ts'

/**
 * Runs jobs in `workers` child processes, largest first, so that the 10,000-node run has a core to
 * itself while the smaller ones share the other.
 */
export async function runJobs (jobs: Job[], workers: number): Promise<JobResult[]> {
  const queue = jobs.map((job, index) => ({ job, index }))
  const results: JobResult[] = []
  const work = async (): Promise<void> => {
    // The largest run keeps every node's last rounds in memory.
    const child = fork(fileURLToPath(new URL('./worker.ts', import.meta.url)), { execArgv: ['--import', 'tsx', '--max-old-space-size=8192'] })
    try {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const { job, index } = next
        results[index] = await new Promise<JobResult>((resolve, reject) => {
          const done = (result: JobResult): void => {
            child.off('exit', failed)
            resolve(result)
          }
          const failed = (code: number | null): void => {
            child.off('message', done)
            reject(new Error(`a simulation worker exited with code ${code}`))
          }
          child.once('message', done)
          child.once('exit', failed)
          child.send(job)
        })
      }
    } finally {
      child.kill()
    }
  }
  await Promise.all(Array.from({ length: Math.min(workers, jobs.length) }, work))
  return results
}
