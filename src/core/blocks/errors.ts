import { HyperspaceError } from '../errors.ts'

/** The node's block quota would be exceeded: nothing of the put was stored, nothing stored was dropped. */
export class BlockStoreFullError extends HyperspaceError {
  override name = 'BlockStoreFullError'

  constructor (readonly needed: number, readonly used: number, readonly quota: number) {
    super('ERR_BLOCK_STORE_FULL', `Block storage is full: ${needed} more bytes do not fit (${used} of ${quota} bytes used)`)
  }
}

/** No provider could hand over a block that verifies. */
export class BlockNotFoundError extends HyperspaceError {
  override name = 'BlockNotFoundError'

  constructor (cid: string, detail?: string) {
    super('ERR_BLOCK_NOT_FOUND', detail === undefined ? `No peer provides block ${cid}` : `Block ${cid} could not be fetched: ${detail}`)
  }
}

/** The peer answered that it does not hold the block: a normal answer, not misbehaviour. */
export class PeerLacksBlockError extends HyperspaceError {
  override name = 'PeerLacksBlockError'

  constructor (peerId: string, cid: string) { super('ERR_PEER_LACKS_BLOCK', `Peer ${peerId} does not hold ${cid}`) }
}

/** A peer answered a block request with an error frame; `code` is the peer's. */
export class RemoteBlockError extends HyperspaceError {
  override name = 'RemoteBlockError'

  constructor (peerId: string, code: string, message: string) { super(code.startsWith('ERR_') ? code : 'ERR_REMOTE', `Peer ${peerId}: ${message}`) }
}
