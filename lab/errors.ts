/** A command the lab runs (ip, iptables, tc) failed: the lab cannot build or change its network. */
export class LabCommandError extends Error {
  override readonly name = 'LabCommandError'
  readonly code = 'ERR_LAB_COMMAND'
  constructor (readonly command: string, readonly stderr: string) {
    super(`${command}: ${stderr.trim()}`)
  }
}

/** A service inside the lab (relay, app server, TURN) did not come up in time or died early. */
export class LabServiceError extends Error {
  override readonly name = 'LabServiceError'
  readonly code = 'ERR_LAB_SERVICE'
}

/** The lab must run as root on Linux: it creates network namespaces and NAT rules. */
export class LabPrivilegeError extends Error {
  override readonly name = 'LabPrivilegeError'
  readonly code = 'ERR_LAB_PRIVILEGE'
}

/** A soak job failed in a way the node's API did not report itself (no node, wrong bytes back, a lost vector) or took too long. */
export class LabJobError extends Error {
  override readonly name = 'LabJobError'
  readonly code = 'ERR_LAB_JOB'
}
