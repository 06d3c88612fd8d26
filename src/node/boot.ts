import { CONFIRMED_LINK_SETTINGS_KEY, linkSettingsKey, linkSettingsOf, parseNodeConfig, withoutLinkSettings, type NodeConfig } from '../core/config.ts'
import { createBrowserLibp2p } from '../net/browser-libp2p.ts'
import { openHyperspaceDb, type HyperspaceDb } from '../storage/database.ts'
import { IdentityStore } from '../storage/identity-store.ts'
import { PeerCacheStore } from '../storage/peer-cache-store.ts'
import { PulseStore } from '../storage/pulse-store.ts'
import { ReceiptStore } from '../storage/receipt-store.ts'
import { EmbeddingChoiceStore, ServedModelsStore } from '../storage/served-models-store.ts'
import { SettingsStore } from '../storage/settings-store.ts'
import { BrowserModelHost } from './browser-model-host.ts'
import { WorkerEmbedder } from './embedder.ts'
import { EmbeddingModelStore } from './embedding-model-store.ts'
import { probeHardware } from './hardware-probe.ts'
import { NodeHost } from './host.ts'
import { ProverClient } from './prover-client.ts'
import { TabLock } from './tab-lock.ts'
import { WorkerScheduler } from './worker-scheduler.ts'
import { browserConnectivity } from './connectivity.ts'
import type { NodeApi } from './api.ts'
import type { JobStores } from './components.ts'
import type { HardwareInfo } from '../core/hardware.ts'

declare global {
  interface Window {
    /** The running node's API for DevTools and tests; absent while another tab runs the node. */
    hyperspace?: NodeApi
  }
}

const BOOTSTRAP_FETCH_TIMEOUT_MS = 5_000
const BOOTSTRAP_MAX_BYTES = 64 * 1024

/** The deployment's bootstrap.json; the service worker answers from cache when offline. */
async function fetchBootstrapFile (): Promise<unknown> {
  try {
    const response = await fetch(new URL('bootstrap.json', document.baseURI), { signal: AbortSignal.timeout(BOOTSTRAP_FETCH_TIMEOUT_MS) })
    if (!response.ok) return {}
    const text = await response.text()
    return text.length > BOOTSTRAP_MAX_BYTES ? {} : JSON.parse(text)
  } catch (err) {
    console.warn('hyperspace: bootstrap.json unavailable', err)
    return {}
  }
}

/** Settings a link asks for, and the deployment's own, for the user to choose between. */
export interface LinkSettingsRequest {
  /** The configuration the link's settings make. */
  link: NodeConfig
  /** The configuration without them: the deployment's bootstrap.json. */
  deployment: NodeConfig
}

/** A request put to the user; `answer` says whether the link's settings are accepted. */
export interface LinkSettingsQuestion extends LinkSettingsRequest {
  answer: (accept: boolean) => void
}

/** Where the last link settings the user confirmed are remembered, so a reload does not ask again. */

function confirmedLinkSettings (): string | null {
  try {
    return localStorage.getItem(CONFIRMED_LINK_SETTINGS_KEY)
  } catch {
    return null
  }
}

function rememberLinkSettings (key: string): void {
  try {
    localStorage.setItem(CONFIRMED_LINK_SETTINGS_KEY, key)
  } catch (err) {
    console.warn('hyperspace: could not remember the confirmed link settings', err)
  }
}

/**
 * The node's configuration: the deployment's bootstrap.json, and the link's settings (?network=,
 * ?bootstrap=, ?round=, ?profile=) only once `confirm` says the user accepted them, or when they are
 * the ones the user last accepted. Declined settings are also taken out of the address bar, so that
 * what it shows is what runs.
 */
export async function loadConfig (confirm: (request: LinkSettingsRequest) => Promise<boolean>): Promise<NodeConfig> {
  const file = await fetchBootstrapFile()
  const settings = linkSettingsOf(location.search)
  if (settings === undefined) return parseNodeConfig(location.search, file)
  const link = parseNodeConfig(location.search, file)
  const key = linkSettingsKey(settings)
  if (confirmedLinkSettings() === key) return link
  const deployment = parseNodeConfig(withoutLinkSettings(location.search), file)
  if (await confirm({ link, deployment })) {
    rememberLinkSettings(key)
    return link
  }
  history.replaceState(history.state, '', `${location.pathname}${withoutLinkSettings(location.search)}${location.hash}`)
  return deployment
}

/** What booting needs besides the configuration: started at once, while bootstrap.json loads. */
export interface BootStart {
  hardware: Promise<HardwareInfo>
  db: Promise<HyperspaceDb>
}

export function startBoot (): BootStart {
  return { hardware: probeHardware(), db: openHyperspaceDb() }
}

/** Wires the browser's real components into a NodeHost and publishes the node as window.hyperspace. */
export async function bootHost (config: NodeConfig, started: BootStart = startBoot()): Promise<NodeHost> {
  const [hardware, db] = await Promise.all([started.hardware, started.db])
  const scheduler = new WorkerScheduler()
  // Made once, when the job coordinators first load; a chunk that failed to load is asked for again.
  let jobStores: Promise<JobStores> | undefined
  const host = new NodeHost({
    config,
    hardware,
    identityStore: new IdentityStore(db),
    peerCache: new PeerCacheStore(db),
    settingsStore: new SettingsStore(db),
    scheduler,
    createLibp2p: createBrowserLibp2p,
    prover: new ProverClient(scheduler.worker),
    pulseStore: new PulseStore(db),
    receiptStore: new ReceiptStore(db),
    jobStores: async () => await (jobStores ??= import('./job-stores.ts').then(m => m.openJobStores(db, hardware.storageQuotaBytes), err => {
      jobStores = undefined
      throw err
    })),
    models: new BrowserModelHost({ hardware, served: new ServedModelsStore(db), embedding: new EmbeddingModelStore({ choice: new EmbeddingChoiceStore(db) }) }),
    embedder: new WorkerEmbedder(),
    isBrowserOnline: () => navigator.onLine,
    connectivity: browserConnectivity()
  }, new TabLock())
  host.addEventListener('change', evt => {
    if (evt.detail.phase === 'running') window.hyperspace = evt.detail.node
    else delete window.hyperspace
  })
  window.addEventListener('pagehide', () => { host.pageClosing() })
  await host.start()
  return host
}
