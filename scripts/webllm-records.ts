import type { Plugin } from 'vite'

const ID = 'virtual:webllm-records'
const RESOLVED = `\0${ID}`

/**
 * `virtual:webllm-records`: web-llm's prebuilt model records (its `prebuiltAppConfig.model_list`),
 * read from the installed package when the app is built. The catalog lists them at every start; as a
 * module of their own they cost one small chunk there, where importing them from web-llm would load
 * and parse its whole 6 MB engine in the inference worker.
 */
export function webLlmRecords (): Plugin {
  return {
    name: 'webllm-records',
    resolveId: source => source === ID ? RESOLVED : undefined,
    load: async id => {
      if (id !== RESOLVED) return undefined
      const { prebuiltAppConfig } = await import('@mlc-ai/web-llm')
      return `export default ${JSON.stringify(prebuiltAppConfig.model_list)}`
    }
  }
}
