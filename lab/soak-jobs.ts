import { LabJobError } from './errors.ts'
import { MODEL, sleep } from './probes.ts'
import type { LabBrowser, LabPage } from './chromium.ts'
import type { Home } from './topology.ts'
import type { ProfileName } from '../src/core/capabilities.ts'

/** One of the soak's pages: its home, its browser, the node in it and the profile it runs. */
export interface SoakPage {
  name: string
  home: Home
  browser: LabBrowser
  node: LabPage
  profile: ProfileName
}

export type JobKind = 'inference' | 'embedding' | 'block' | 'memory'
export const JOB_KINDS: readonly JobKind[] = ['inference', 'embedding', 'block', 'memory']

/** What one job did. `receipt` is the job id a network job returned: both sides must hold its receipt. */
export interface JobRecord {
  kind: JobKind
  /** The page that asked (home name), and for blocks and memory the page that read back. */
  client: string
  reader?: string
  /** The peer that served it, when the API says. */
  servedBy?: string
  receipt?: string
  ok: boolean
  ms: number
  at: number
  error?: string
}

/** How long a job may take inside the page (its AbortSignal) and, a little longer, seen from here. */
const JOB_TIMEOUT_MS = 60_000
const EVALUATE_TIMEOUT_MS = JOB_TIMEOUT_MS + 30_000

/** Prompts the inference jobs rotate through: the first of each is generated, repeats may come from a cache. */
const PROMPTS = ['Once upon a time', 'The little dog', 'One day a girl', 'The sun was']
const TEXTS = ['stock market fell', 'investors sold shares', 'the cat sat on the mat', 'a storm is coming', 'fresh bread in the morning']

/** The page's own timeout may not fire (a frozen tab, a hung evaluate): the soak goes on anyway. */
async function bounded<T> (work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new LabJobError(`no answer in ${EVALUATE_TIMEOUT_MS / 1000} s`)) }, EVALUATE_TIMEOUT_MS) })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function inference (client: SoakPage, prompt: string): Promise<Partial<JobRecord>> {
  return await client.node.page.evaluate(async ([model, content, timeoutMs]) => {
    const completion = await window.hyperspace?.chat.completions.create(
      { model, messages: [{ role: 'user', content }], max_tokens: 16, temperature: 0, route: 'network', stream: false },
      { signal: AbortSignal.timeout(timeoutMs) })
    if (completion === undefined) throw new Error('no node')
    return { servedBy: completion.hyperspace.servedBy, ...(completion.hyperspace.receipt !== undefined ? { receipt: completion.hyperspace.receipt } : {}) }
  }, [MODEL, prompt, JOB_TIMEOUT_MS] as const)
}

async function embedding (client: SoakPage, text: string): Promise<Partial<JobRecord>> {
  return await client.node.page.evaluate(async ([t, timeoutMs]) => {
    const result = await window.hyperspace?.embed([t], { route: 'network', signal: AbortSignal.timeout(timeoutMs) })
    if (result === undefined) throw new Error('no node')
    return { servedBy: result.servedBy, ...(result.receipt !== undefined ? { receipt: result.receipt } : {}) }
  }, [text, JOB_TIMEOUT_MS] as const)
}

/** 64 KiB of random bytes put on the client and fetched by the reader, compared by SHA-256. */
async function block (client: SoakPage, reader: SoakPage): Promise<Partial<JobRecord>> {
  const put = await client.node.page.evaluate(async () => {
    const bytes = crypto.getRandomValues(new Uint8Array(64 * 1024))
    const cid = await window.hyperspace?.blocks.put(bytes)
    const digest = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), b => b.toString(16).padStart(2, '0')).join('')
    return { cid, digest }
  })
  if (put.cid === undefined) throw new LabJobError('no node')
  const got = await reader.node.page.evaluate(async ([cid, timeoutMs]) => {
    const bytes = await window.hyperspace?.blocks.get(cid, { signal: AbortSignal.timeout(timeoutMs) })
    if (bytes === undefined) throw new Error('no node')
    return Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(bytes))), b => b.toString(16).padStart(2, '0')).join('')
  }, [put.cid, JOB_TIMEOUT_MS] as const)
  if (got !== put.digest) throw new LabJobError(`block ${put.cid} came back with another digest`)
  return {}
}

/** A text put into the replicated memory by the client, then found by the reader's query. */
async function memory (client: SoakPage, reader: SoakPage, key: string, text: string): Promise<Partial<JobRecord>> {
  await client.node.page.evaluate(async ([k, t, timeoutMs]) => {
    const result = await window.hyperspace?.memory.put(k, t, { text: t }, { signal: AbortSignal.timeout(timeoutMs) })
    if (result === undefined || result.stored === 0) throw new Error(`memory put stored nowhere: ${JSON.stringify(result?.failed ?? [])}`)
  }, [key, text, JOB_TIMEOUT_MS] as const)
  const keys = await reader.node.page.evaluate(async ([t, timeoutMs]) => {
    const result = await window.hyperspace?.memory.query(t, 10, { signal: AbortSignal.timeout(timeoutMs) })
    return result?.hits.map(hit => hit.key) ?? []
  }, [text, JOB_TIMEOUT_MS] as const)
  if (!keys.includes(key)) throw new LabJobError(`memory query did not find ${key}`)
  return {}
}

/**
 * Runs jobs one after another until `running()` turns false, `gapMs` apart: the kinds in turn, the
 * client page in turn, the reader (blocks, memory) the page after it. Failures are recorded, not
 * thrown: faults make some jobs fail, and the checks ask only that completed jobs left receipts.
 */
export async function runJobs (pages: SoakPage[], running: () => boolean, gapMs: number, records: JobRecord[]): Promise<void> {
  for (let i = 0; running(); i++) {
    const kind = JOB_KINDS[i % JOB_KINDS.length] as JobKind
    const turn = Math.floor(i / JOB_KINDS.length)
    const client = pages[turn % pages.length] as SoakPage
    const reader = pages[(turn + 1) % pages.length] as SoakPage
    const started = Date.now()
    const record: JobRecord = { kind, client: client.name, ok: false, ms: 0, at: started }
    if (kind === 'block' || kind === 'memory') record.reader = reader.name
    try {
      const text = TEXTS[turn % TEXTS.length] as string
      const outcome = await bounded(
        kind === 'inference'
          ? inference(client, PROMPTS[turn % PROMPTS.length] as string)
          : kind === 'embedding'
            ? embedding(client, `${text} ${turn}`)
            // Each key its own text: with five texts, from turn 50 on every text had ten keys of
            // score 1 before it, and the new key fell out of a query's top 10 (the 60-minute soak's
            // "memory query did not find soak-50" and every one after).
            : kind === 'block' ? block(client, reader) : memory(client, reader, `soak-${turn}`, `${text} ${turn}`))
      Object.assign(record, outcome, { ok: true })
    } catch (err) {
      record.error = (err as Error).message.split('\n')[0] ?? String(err)
    }
    record.ms = Date.now() - started
    records.push(record)
    if (!record.ok) console.error(`job ${kind} from ${client.name} failed: ${record.error ?? ''}`)
    await sleep(gapMs)
  }
}
