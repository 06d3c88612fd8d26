/**
 * The browser's network signals as the node hears them (NodeComponents.connectivity): `online` and
 * `offline` as the window reports them, and `online` again when the network changes under a page that
 * stays online (NetworkInformation's `change`: another Wi-Fi, a cable plugged in, a new address). In
 * each case a relay that was lost may be reachable now, and the node redials it at once with its
 * retry schedule started over instead of waiting out the delay it grew on the old network.
 */
export function browserConnectivity (): EventTarget {
  const target = new EventTarget()
  window.addEventListener('online', () => { target.dispatchEvent(new Event('online')) })
  window.addEventListener('offline', () => { target.dispatchEvent(new Event('offline')) })
  // Not in every browser (Firefox and Safari lack it); the window's events still come there.
  const connection = (navigator as Navigator & { connection?: EventTarget }).connection
  connection?.addEventListener('change', () => {
    if (navigator.onLine) target.dispatchEvent(new Event('online'))
  })
  return target
}
