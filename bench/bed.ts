import { chromium, type Browser, type Page } from '@playwright/test'
import { CHROMIUM_ARGS } from '../playwright.config.ts'
import { acceptLinkSettingsAhead, appUrl, gotoApp, waitForNode, type TestNode } from '../tests/e2e/nodes.ts'
import { startRelayProcess, type RelayProcess, type RelayProcessOptions } from '../tests/e2e/relay-process.ts'
import { ensureBuild, startPreview, type PreviewServer } from './procs.ts'

/** The machine's Chromium (never a downloaded one), with the flags the e2e tests use. */
export async function launchChromium (): Promise<Browser> {
  return await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
}

/** What a network benchmark runs on: this checkout built and served, a relay process, and a browser. */
export interface BenchBed {
  preview: PreviewServer
  relay: RelayProcess
  browser: Browser
  /** A node with `profile` in its own browser context, once it runs (the link's settings accepted). */
  openNode(profile: string): Promise<TestNode>
  close(): Promise<void>
}

/** Builds the app, serves it from `previewPort` up, and starts a relay and Chromium. */
export async function startBenchBed (root: string, previewPort: number, relayOptions?: RelayProcessOptions): Promise<BenchBed> {
  await ensureBuild(root)
  const preview = await startPreview(root, previewPort)
  const relay = await startRelayProcess(relayOptions)
  const browser = await launchChromium()
  return {
    preview,
    relay,
    browser,
    openNode: async profile => {
      const context = await browser.newContext({ baseURL: preview.url })
      const page = await context.newPage()
      await gotoApp(page, appUrl([relay.addr], `&profile=${profile}`))
      return { context, page, peerId: (await waitForNode(page)).peerId }
    },
    close: async () => {
      await browser.close()
      await relay.stop()
      await preview.close()
    }
  }
}

/**
 * A returning user's tab at `url` in a new context of `browser` (its link settings accepted before,
 * so no dialog), once its node is online.
 */
export async function openOnlinePage (browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext()
  await acceptLinkSettingsAhead(context, url)
  const page = await context.newPage()
  await page.goto(url)
  await page.waitForFunction(() => window.hyperspace?.status().state === 'online', null, { timeout: 60_000 })
  return page
}
