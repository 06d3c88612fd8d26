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
export type Claim = { opened: false } | { opened: true, dropped: string | undefined }

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
    let dropped: string | undefined
    if (this.openers.size >= this.limits.maxTopics) {
      if (!opener.established) return { opened: false }
      dropped = this.givingWay(subscribersOf)
      if (dropped === undefined) return { opened: false }
      this.openers.delete(dropped)
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
