import type { HyperspaceServices } from './services.ts'
import type { Message, TopicValidatorFn } from '@libp2p/gossipsub'
import type { Libp2p } from '@libp2p/interface'

/**
 * One gossip topic's membership: the validator that judges each message on it, the handler of the
 * messages it let through, and the subscription. Stop undoes all three; the validator goes before
 * the subscription so that no message arrives unjudged.
 */
export class TopicSubscription {
  constructor (
    private readonly libp2p: Libp2p<HyperspaceServices>,
    readonly topic: string,
    private readonly validate: TopicValidatorFn,
    private readonly onMessage: (msg: Message) => void
  ) {}

  start (): void {
    const pubsub = this.libp2p.services.pubsub
    pubsub.topicValidators.set(this.topic, this.validate)
    pubsub.addEventListener('message', this.listener)
    pubsub.subscribe(this.topic)
  }

  stop (): void {
    const pubsub = this.libp2p.services.pubsub
    pubsub.removeEventListener('message', this.listener)
    pubsub.topicValidators.delete(this.topic)
    pubsub.unsubscribe(this.topic)
  }

  private readonly listener = (evt: CustomEvent<Message>): void => {
    if (evt.detail.topic === this.topic) this.onMessage(evt.detail)
  }
}
