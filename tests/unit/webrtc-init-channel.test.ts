import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { parseAst } from 'vite'
import { describe, expect, it } from 'vitest'
import { patchInitChannelWait, WebRtcPatchError } from '../../scripts/webrtc-init-channel.ts'

const require = createRequire(import.meta.url)
const webrtcDist = dirname(require.resolve('@libp2p/webrtc'))
const INITIATOR = join(webrtcDist, 'private-to-private', 'initiate-connection.js')

describe('the init-channel patch of @libp2p/webrtc (scripts/webrtc-init-channel.ts)', () => {
  const installed = readFileSync(INITIATOR, 'utf8')

  it('applies to the installed release and leaves valid JavaScript', () => {
    const patched = patchInitChannelWait(INITIATOR, installed)
    expect(() => parseAst(patched)).not.toThrow()
    // An init channel the recipient already closed is neither waited on to open nor to close.
    expect(patched).toContain("if (channel.readyState === 'connecting')")
    expect(patched).toContain("await pEvent(channel, ['open', 'close'], { signal })")
    expect(patched).toContain("if (channel.readyState !== 'closed')")
    expect(patched).not.toContain("if (channel.readyState !== 'open')")
  })

  it('fails the build when the library no longer holds the racy wait', () => {
    const changed = installed.replace("await pEvent(channel, 'open', {", "await waitForOpen(channel, {")
    expect(() => patchInitChannelWait(INITIATOR, changed)).toThrow(WebRtcPatchError)
  })
})
