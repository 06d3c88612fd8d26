import { preview, type PreviewServer } from 'vite'
import { ISOLATION_HEADERS, defaultModelsDir, hyperspaceServe } from './serve-plugin.ts'

export interface ServeBuiltOptions {
  host: string
  port: number
  /** Served as /bootstrap.json. */
  bootstrap: object
  logLevel?: 'error' | 'info'
}

/**
 * Serves the built app (dist/) as `vite preview` does, with the isolation headers, /bootstrap.json and
 * /models/. It does not load vite.config.ts, whose build plugins a preview does not use: loaded from
 * a script run by tsx, whose module hooks see every module the plugins import, that alone took 16 s
 * of `npm start`'s 20 (1.3 s under plain Node).
 */
export async function serveBuiltApp (o: ServeBuiltOptions): Promise<PreviewServer> {
  const modelsDir = defaultModelsDir()
  return await preview({
    configFile: false,
    ...(o.logLevel !== undefined ? { logLevel: o.logLevel } : {}),
    preview: { host: o.host, port: o.port, strictPort: true, headers: ISOLATION_HEADERS },
    plugins: [hyperspaceServe({ bootstrap: o.bootstrap, ...(modelsDir !== undefined ? { modelsDir } : {}) })]
  })
}
