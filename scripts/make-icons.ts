/**
 * Renders public/icon.svg into the PNG icons the web app manifest lists (`npm run icons`). The
 * maskable one keeps the artwork inside the safe zone: 80% of the size, centred on the theme colour.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const PUBLIC = fileURLToPath(new URL('../public/', import.meta.url))
const BACKGROUND = '#0b1020'

const ICONS = [
  { file: 'icon-192.png', size: 192, scale: 1 },
  { file: 'icon-512.png', size: 512, scale: 1 },
  { file: 'icon-512-maskable.png', size: 512, scale: 0.8 }
]

function page (svg: string, size: number, scale: number): string {
  const inner = Math.round(size * scale)
  return `<!doctype html><html><head><style>
    html, body { margin: 0; width: ${size}px; height: ${size}px; overflow: hidden; background: ${BACKGROUND}; }
    body { display: flex; align-items: center; justify-content: center; }
    svg { width: ${inner}px; height: ${inner}px; display: block; }
  </style></head><body>${svg}</body></html>`
}

const svg = await readFile(`${PUBLIC}icon.svg`, 'utf8')
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
})
try {
  for (const icon of ICONS) {
    const tab = await browser.newPage({ viewport: { width: icon.size, height: icon.size }, deviceScaleFactor: 1 })
    await tab.setContent(page(svg, icon.size, icon.scale))
    // An opaque PNG: launchers that do not mask icons show the theme colour behind the rounded corners.
    await tab.screenshot({ path: `${PUBLIC}${icon.file}`, omitBackground: false })
    await tab.close()
    console.log(`wrote public/${icon.file}`)
  }
} finally {
  await browser.close()
}
