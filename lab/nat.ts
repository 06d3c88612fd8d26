import { runIn } from './netns.ts'

/**
 * The three NAT behaviours of RFC 4787 that decide whether two browsers can connect directly.
 * - `cone`: endpoint-independent mapping and filtering ("full cone"): anyone may send to the mapped port.
 * - `restricted`: endpoint-independent mapping, address-and-port-dependent filtering (Linux MASQUERADE).
 * - `symmetric`: a new mapping (random port) for every destination: STUN's answer is useless to peers.
 */
export type NatKind = 'cone' | 'restricted' | 'symmetric'
export const NAT_KINDS: readonly NatKind[] = ['cone', 'restricted', 'symmetric']

/** Packets a home's link loses, in each direction. */
export const LOSS_PERCENT = 1

/** The rule that cuts a router's uplink; it carries a comment so the lab removes exactly this rule. */
const CUT_RULE = ['FORWARD', '-m', 'comment', '--comment', 'hslab-cut', '-j', 'DROP']

/**
 * NAT on a router namespace between its `wan` and `lan` interfaces. Linux keeps a flow's source port
 * when it can, which gives endpoint-independent mapping; MASQUERADE's conntrack then only lets replies
 * in (port-restricted). Full cone adds a DNAT of everything unsolicited to the one home host, so a
 * mapped port is open to all. `--random-fully` picks a fresh port for every flow: symmetric.
 */
export async function applyNat (router: string, kind: NatKind, homeAddr: string): Promise<void> {
  const masquerade = ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE']
  await runIn(router, 'iptables', kind === 'symmetric' ? [...masquerade, '--random-fully'] : masquerade)
  if (kind === 'cone') await runIn(router, 'iptables', ['-t', 'nat', '-A', 'PREROUTING', '-i', 'wan', '-j', 'DNAT', '--to-destination', homeAddr])
}

/**
 * Random loss on everything the router forwards, both ways. The statistic match, not tc netem: the
 * kernels the lab runs on (e.g. Firecracker guests) often lack sch_netem.
 */
export async function applyLoss (router: string): Promise<void> {
  await runIn(router, 'iptables', ['-A', 'FORWARD', '-m', 'statistic', '--mode', 'random', '--probability', String(LOSS_PERCENT / 100), '-j', 'DROP'])
}

/** Drops everything the router would forward, as a dead uplink would; its NAT state stays. */
export async function cutUplink (router: string): Promise<void> {
  await runIn(router, 'iptables', ['-I', ...CUT_RULE])
}

export async function restoreUplink (router: string): Promise<void> {
  await runIn(router, 'iptables', ['-D', ...CUT_RULE])
}
