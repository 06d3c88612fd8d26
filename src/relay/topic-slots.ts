/** The peer that opened an on-demand topic (its first subscriber): what the topic counts against. */
export interface Opener {
  peer: string
  /** Its address group (`addressGroup`), when its connection has one. */
  host: string | undefined
  /** Established on the topic's network when it opened the topic: an anchor, or aged in the relay's pulse history. */
  established: boolean
}

/** A carried topic's subscribers now, as the GossipSub it travels on sees them. */
export interface Subscribers {
  count: number
  /** Whether one of them is established on the topic's network. */
  established: boolean
}

export interface SlotLimits {
  maxTopics: number
  maxTopicsPerPeer: number
  maxTopicsPerHost: number
}

/** What `TopicSlots.claim` decided: refused, or opened, in the place of `dropped` when there was no free slot. */
export type Claim = { opened: false } | { opened: true, dropped: { topic: string, opener: Opener } | undefined }

/**
 * The on-demand topics a relay carries and who opened each (TopicCarrier's policy, apart from the
 * network). Any opener takes a free slot within its shares: `maxTopicsPerPeer` of its own,
 * `maxTopicsPerHost` for its address group.
 *
 * Free keys cost nothing, so strangers could take every slot and keep them for as long as they stay
 * subscribed, and the network's real committees would go uncarried. Established peers go first, as
 * elsewhere (provider records, points-proof places): with no free slot, an established opener takes
 * the place of a topic no established peer subscribes to now, and its address group's share counts
 * only established openers, so strangers on its address (a shared NAT, a proxy) cannot use it up. A
 * topic an established peer subscribes to is never dropped for another, and an established key opens
 * at most its own share like any key, so one aged key cannot hold every slot either.
 */
export class TopicSlots {
  /** In the order they were opened. */
  private readonly openers = new Map<string, Opener>()

  constructor (private readonly limits: SlotLimits) {}

  /** Records `topic` as opened by `opener` if there is room; `subscribersOf` tells which carried topic may give way. */
  claim (topic: string, opener: Opener, subscribersOf: (topic: string) => Subscribers): Claim {
    if (!this.withinShares(opener)) return { opened: false }
    let dropped: { topic: string, opener: Opener } | undefined
    if (this.openers.size >= this.limits.maxTopics) {
      if (!opener.established) return { opened: false }
      const givingWay = this.givingWay(subscribersOf)
      const itsOpener = givingWay === undefined ? undefined : this.openers.get(givingWay)
      if (givingWay === undefined || itsOpener === undefined) return { opened: false }
      this.openers.delete(givingWay)
      dropped = { topic: givingWay, opener: itsOpener }
    }
    this.openers.set(topic, opener)
    return { opened: true, dropped }
  }

  release (topic: string): void {
    this.openers.delete(topic)
  }

  clear (): void {
    this.openers.clear()
  }

  private withinShares (opener: Opener): boolean {
    let byPeer = 0
    let byHost = 0
    for (const { peer, host, established } of this.openers.values()) {
      if (peer === opener.peer) byPeer++
      if (host !== undefined && host === opener.host && (established || !opener.established)) byHost++
    }
    return byPeer < this.limits.maxTopicsPerPeer && byHost < this.limits.maxTopicsPerHost
  }

  /**
   * The topic that gives way to an established opener: one without an established subscriber, and of
   * those the one with the fewest subscribers (dropping it cuts the fewest peers off the relay there;
   * a squatted topic has only its squatter's keys), the earliest opened among equals.
   */
  private givingWay (subscribersOf: (topic: string) => Subscribers): string | undefined {
    let fewest: { topic: string, count: number } | undefined
    for (const topic of this.openers.keys()) {
      const { count, established } = subscribersOf(topic)
      if (!established && (fewest === undefined || count < fewest.count)) fewest = { topic, count }
    }
    return fewest?.topic
  }
}

type Waiting = [topic: string, asker: Opener]

/** The address group a waiting topic counts against: its asker's, or one for all askers without one. */
const groupOf = (asker: Opener): string => asker.host ?? 'ungrouped'

/** Waiting topics by their askers' address group, each group's in order. */
function byGroup (waiting: Waiting[]): Map<string, Waiting[]> {
  const groups = new Map<string, Waiting[]>()
  for (const entry of waiting) {
    const group = groupOf(entry[1])
    const ofGroup = groups.get(group)
    if (ofGroup === undefined) groups.set(group, [entry])
    else ofGroup.push(entry)
  }
  return groups
}

/**
 * On-demand topics refused for want of a slot, or dropped for an established opener, each with the
 * subscriber that asked for it, to be tried again when slots free (TopicCarrier's sweep): a
 * subscription is heard once, so a committee refused while squatters held every slot stayed
 * uncarried after they left. At most `capacity` wait (the relay's `maxTopics`: more than every slot
 * could take at once is never needed), so a flood of refused topics costs the relay a bounded list.
 *
 * When the list is full, established peers go first: an established asker takes the place of a
 * stranger's topic. Otherwise a newcomer takes the place of a topic of its own kind (established or
 * stranger) from the address group waiting with the most of them, if that group has at least two more
 * than the newcomer's (as places in the job queue): one address's keys cannot push out others', and a
 * topic that waits is not pushed out by a flood from its own address either.
 */
export class WaitingTopics {
  /** In the order they were first refused. */
  private readonly askers = new Map<string, Opener>()

  constructor (private readonly capacity: number) {}

  get size (): number {
    return this.askers.size
  }

  has (topic: string): boolean {
    return this.askers.has(topic)
  }

  /** Records `topic` as waiting for `asker` if there is room; a waiting topic an established peer asks for moves up to established. */
  add (topic: string, asker: Opener): void {
    const waiting = this.askers.get(topic)
    if (waiting !== undefined) {
      if (asker.established && !waiting.established) this.askers.set(topic, asker)
      return
    }
    if (this.askers.size >= this.capacity) {
      const pushedOut = this.givingWay(asker)
      if (pushedOut === undefined) return
      this.askers.delete(pushedOut)
    }
    this.askers.set(topic, asker)
  }

  delete (topic: string): void {
    this.askers.delete(topic)
  }

  clear (): void {
    this.askers.clear()
  }

  /**
   * The waiting topics in the order to try them: established askers' first, oldest first; then
   * strangers', their address groups taking turns, so the first freed slots do not all go to the
   * address that queued the most.
   */
  inTurn (): Waiting[] {
    const waiting = [...this.askers]
    const strangers = [...byGroup(waiting.filter(([, asker]) => !asker.established)).values()]
    const turns = waiting.filter(([, asker]) => asker.established)
    const longest = Math.max(0, ...strangers.map(ofGroup => ofGroup.length))
    for (let turn = 0; turn < longest; turn++) {
      for (const ofGroup of strangers) {
        const entry = ofGroup[turn]
        if (entry !== undefined) turns.push(entry)
      }
    }
    return turns
  }

  /** The waiting topic that makes room for `asker` in a full list, if one does: the newest of the group that gives way. */
  private givingWay (asker: Opener): string | undefined {
    const waiting = [...this.askers]
    const strangers = waiting.filter(([, other]) => !other.established)
    // A stranger's topic gives way to an established asker's, whatever its group holds.
    const outranked = asker.established && strangers.length > 0
    const groups = byGroup(outranked ? strangers : waiting.filter(([, other]) => other.established === asker.established))
    let most: Waiting[] = []
    for (const ofGroup of groups.values()) if (ofGroup.length > most.length) most = ofGroup
    if (!outranked && most.length < (groups.get(groupOf(asker))?.length ?? 0) + 2) return undefined
    return most.at(-1)?.[0]
  }
}
