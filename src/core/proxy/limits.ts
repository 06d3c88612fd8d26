/**
 * The largest body one proxy fetch returns (and one receipt pays for). A module of its own: receipts
 * cap a proxy job's units by it, and a page loads the receipts before it is online, the proxy's URL
 * rules and wire codec only with the job services.
 */
export const PROXY_MAX_BODY_BYTES = 1024 * 1024
