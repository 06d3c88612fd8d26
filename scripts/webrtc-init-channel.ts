import type { Plugin } from 'vite'

/**
 * A build-time fix for a race in @libp2p/webrtc's private-to-private dialer (6.0.33, the latest).
 *
 * The dialer creates an `init` data channel before its offer. Once the peer connection is up it waits
 * for that channel's `open` event, closes it, and waits for its `close` event. The recipient closes the
 * same channel as soon as its muxer adopts it. When the recipient's page gets there first (its main
 * thread is less busy), the dialer's channel has opened and been closed before the dialer listens, so
 * it waits for an `open` event that never comes: the dial stalls until the caller's timeout. Three
 * pages starting at once on this machine stalled so in 3 of 8 start-ups, 2 to 5 s per try
 * (`TRACE_DEBUG=libp2p:webrtc:trace npx tsx bench/trace-startup.ts 4`).
 *
 * The patch waits only for what has not happened yet: `open` (or `close`) while the channel is still
 * connecting, `close` unless it is closed. The build fails if the library's text changed, so a new
 * release is looked at again rather than shipped unpatched.
 */
const MODULE = /@libp2p\/webrtc\/dist\/src\/private-to-private\/initiate-connection\.js$/

const RACY = `        if (channel.readyState !== 'open') {
            log.trace('wait for init channel to open');
            await pEvent(channel, 'open', {
                signal
            });
        }
        log.trace('closing init channel');
        channel.close();
        // wait for init channel to close before proceeding, otherwise the channel
        // id can be reused before both sides have seen the channel close
        log.trace('waiting for init channel to close');
        await pEvent(channel, 'close', {
            signal
        });`

const FIXED = `        if (channel.readyState === 'connecting') {
            log.trace('wait for init channel to open');
            await pEvent(channel, ['open', 'close'], { signal });
        }
        log.trace('closing init channel');
        channel.close();
        // the channel id must not be reused before both sides have seen the channel close
        if (channel.readyState !== 'closed') {
            log.trace('waiting for init channel to close');
            await pEvent(channel, 'close', { signal });
        }`

export class WebRtcPatchError extends Error {
  constructor (id: string) {
    super(`${id} no longer holds the init-channel wait scripts/webrtc-init-channel.ts patches: check whether the new @libp2p/webrtc still races, then update or drop the patch`)
    this.name = 'WebRtcPatchError'
  }
}

/** Patches the dialer's init-channel waits in `code`, the text of initiate-connection.js. */
export function patchInitChannelWait (id: string, code: string): string {
  const normalised = code.replace(/\r\n/g, '\n')
  if (!normalised.includes(RACY)) throw new WebRtcPatchError(id)
  return normalised.replace(RACY, FIXED)
}

const transform = (code: string, id: string): string | undefined => MODULE.test(id) ? patchInitChannelWait(id, code) : undefined

/** The Vite plugin: in the build, and in the dev server's dependency pre-bundling. */
export function webRtcInitChannel (): Plugin {
  return { name: 'hyperspace-webrtc-init-channel', enforce: 'pre', transform }
}

/** The same patch as a Rolldown plugin for `optimizeDeps`, which pre-bundles dependencies without Vite's plugins. */
export const webRtcInitChannelDeps = { name: 'hyperspace-webrtc-init-channel-deps', transform }
