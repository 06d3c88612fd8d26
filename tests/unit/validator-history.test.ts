import { afterAll, describe, expect, it } from 'vitest'
import { AGE_ROUNDS, AGE_SLACK, MAX_HISTORIES, QUORUM, quorumOutcome, ValidatorHistory, type Vote } from '../../src/core/pulse/validators.ts'
import { PulseStore } from '../../src/storage/pulse-store.ts'
import { closeAll, fakePeerId, openDb } from './helpers.ts'

const root = new Uint8Array(32).fill(1)
const otherRoot = new Uint8Array(32).fill(2)
const pass = (validator: string, on = root): Vote => ({ validator, result: { peer: 'x', ok: true, root: on, caps: [] } })
const strike = (validator: string): Vote => ({ validator, result: { peer: 'x', ok: false, reason: 'wrong-row', root, caps: [] } })

afterAll(closeAll)

describe('ValidatorHistory', () => {
  it('ages a peer after AGE_ROUNDS distinct verified rounds, each round counted once', () => {
    const history = new ValidatorHistory()
    for (let r = 1; r < AGE_ROUNDS; r++) {
      history.noteVerified('p', r)
      history.noteVerified('p', r)
    }
    expect(history.isAged('p')).toBe(false)
    history.noteVerified('p', AGE_ROUNDS)
    expect(history.isAged('p')).toBe(true)
  })

  it('counts a peer nearly aged AGE_SLACK rounds before it ages, and firmly aged AGE_SLACK rounds after', () => {
    const history = new ValidatorHistory()
    const states = (): boolean[] => [history.mayBeAged('p'), history.isAged('p'), history.isFirmlyAged('p')]
    history.restore([{ peer: 'p', verifiedRounds: AGE_ROUNDS - AGE_SLACK - 1, lastRound: 0 }])
    expect(states()).toEqual([false, false, false])
    history.noteVerified('p', 1)
    expect(states()).toEqual([true, false, false])
    history.restore([{ peer: 'p', verifiedRounds: AGE_ROUNDS, lastRound: 1 }])
    expect(states()).toEqual([true, true, false])
    history.restore([{ peer: 'p', verifiedRounds: AGE_ROUNDS + AGE_SLACK, lastRound: 1 }])
    expect(states()).toEqual([true, true, true])
  })

  it('keeps at most MAX_HISTORIES peers, forgetting the shortest history first', () => {
    const history = new ValidatorHistory()
    history.noteVerified('veteran', 1)
    history.noteVerified('veteran', 2)
    for (let i = 0; i < MAX_HISTORIES + 10; i++) history.noteVerified(`p${i}`, 3)
    expect(history.snapshot()).toHaveLength(MAX_HISTORIES)
    expect(history.verifiedRounds('veteran')).toBe(2)
  })

  it('restores a kept history; a peer known to both keeps the longer one', () => {
    const history = new ValidatorHistory()
    history.noteVerified('a', 10)
    history.restore([{ peer: 'a', verifiedRounds: AGE_ROUNDS, lastRound: 9 }, { peer: 'b', verifiedRounds: 3, lastRound: 9 }])
    expect(history.isAged('a')).toBe(true)
    expect(history.verifiedRounds('b')).toBe(3)
    history.restore([{ peer: 'a', verifiedRounds: 1, lastRound: 1 }])
    expect(history.verifiedRounds('a')).toBe(AGE_ROUNDS)
  })
})

describe('quorumOutcome', () => {
  const history = new ValidatorHistory(['anchor'])
  it('a round with no voter verifies nothing; an anchor alone verifies while nobody is drawn', () => {
    expect(quorumOutcome([], root, [], history).verified).toBe(false)
    expect(quorumOutcome([pass('stranger')], root, [], history).verified).toBe(false)
    expect(quorumOutcome([pass('anchor')], root, [], history)).toMatchObject({ verified: true, needed: 1 })
  })

  it(`needs ${QUORUM} passes once there are that many voters, and more passes than strikes`, () => {
    const drawn = ['v1', 'v2', 'v3']
    expect(quorumOutcome([pass('v1')], root, drawn, history).verified).toBe(false)
    expect(quorumOutcome([pass('v1'), pass('v2')], root, drawn, history).verified).toBe(true)
    expect(quorumOutcome([pass('v1'), pass('v2'), strike('v3'), strike('anchor')], root, drawn, history).verified).toBe(false)
    expect(quorumOutcome([pass('v1'), pass('v2'), pass('anchor'), strike('v3')], root, drawn, history).verified).toBe(true)
  })

  it('counts no vote twice, no vote from outside the voters and no vote about another root', () => {
    const drawn = ['v1', 'v2']
    expect(quorumOutcome([pass('v1'), pass('v1'), pass('x1'), pass('x2')], root, drawn, history).verified).toBe(false)
    expect(quorumOutcome([pass('v1'), pass('v2', otherRoot)], root, drawn, history).verified).toBe(false)
  })
})

describe('PulseStore validator history', () => {
  it('is kept per network and identity, and a damaged entry is dropped on load', async () => {
    const db = await openDb()
    const store = new PulseStore(db)
    const [alice, bob] = [fakePeerId(1), fakePeerId(2)]
    await store.saveValidatorHistory('dev', alice, [{ peer: 'p', verifiedRounds: 41, lastRound: 7 }])
    expect(await store.validatorHistory('dev', alice)).toEqual([{ peer: 'p', verifiedRounds: 41, lastRound: 7 }])
    expect(await store.validatorHistory('dev', bob)).toEqual([])
    expect(await store.validatorHistory('other', alice)).toEqual([])
    await db.put('settings', [{ peer: 'q', verifiedRounds: 'many', lastRound: 1 }, { peer: 'r', verifiedRounds: 2, lastRound: 3 }, null], `validator-history/dev/${bob}`)
    expect(await store.validatorHistory('dev', bob)).toEqual([{ peer: 'r', verifiedRounds: 2, lastRound: 3 }])
  })
})
