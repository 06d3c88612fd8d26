import { openDB, type DBSchema, type IDBPDatabase } from 'idb'
import { PROTOCOL_LIMITS } from './protocol.ts'

/**
 * wllama thread counts chosen by measurement (measured-threads.ts), kept in IndexedDB so a model is
 * measured once per machine. A database of its own: the page's (src/storage/database.ts) is
 * versioned by the page, and a worker holding it open would block its upgrades.
 */

export const THREAD_CHOICE_DB = 'hyperspace-wllama-threads'

/** What a measurement depends on: the model, the machine, and the counts it could try. */
export interface ThreadChoiceKey {
  url: string
  cores: number
  maxThreads: number
}

export interface ThreadChoiceCache {
  get: (key: ThreadChoiceKey) => Promise<number | undefined>
  put: (key: ThreadChoiceKey, threads: number) => Promise<void>
}

interface ThreadChoiceSchema extends DBSchema {
  choices: { key: [string, number, number], value: number }
}

function keyOf ({ url, cores, maxThreads }: ThreadChoiceKey): [string, number, number] {
  return [url, cores, maxThreads]
}

/** The store in IndexedDB (`name` lets tests keep theirs apart); opened on first use. */
export function indexedDbThreadChoices (name = THREAD_CHOICE_DB): ThreadChoiceCache {
  let db: Promise<IDBPDatabase<ThreadChoiceSchema>> | undefined
  const open = async (): Promise<IDBPDatabase<ThreadChoiceSchema>> => {
    db ??= openDB<ThreadChoiceSchema>(name, 1, { upgrade: database => { database.createObjectStore('choices') } })
    return await db
  }
  return {
    async get (key) {
      const stored = await (await open()).get('choices', keyOf(key))
      // Re-checked on read: only a count this key could have chosen is one.
      return Number.isInteger(stored) && (stored as number) >= 1 && (stored as number) <= Math.min(key.maxThreads, PROTOCOL_LIMITS.threads) ? stored : undefined
    },
    async put (key, threads) {
      await (await open()).put('choices', threads, keyOf(key))
    }
  }
}
