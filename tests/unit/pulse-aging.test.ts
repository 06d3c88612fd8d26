import { describe, expect, it } from 'vitest'
import { AGE_ROUNDS } from '../../src/core/pulse/validators.ts'
import { PulseBus, type BusNode, type NodeSpec } from './pulse-bus.ts'

/**
 * A young network ages: one by one its pages pass AGE_ROUNDS verified rounds, and each node counts
 * those rounds itself, so for a few rounds (more after a cut, a relay restart or lost verdicts) nodes
 * disagree about who is aged. The 60-minute lab soak saw the pulse stop for good at that moment (every
 * page 33-39 verified rounds, none after): these keep the disagreement from splitting the chain or
 * leaving a drawn validator that does not know it is drawn.
 */

const PAGES = ['a', 'b', 'c', 'd', 'e', 'f']

function verifiedIn (node: BusNode, from: number, to: number): number {
  let count = 0
  for (let r = from; r < to; r++) if (node.book.get(r).verified) count++
  return count
}

/**
 * A relay and the pages on a bus seeded `seed`, each counting the others aged as its view says: every
 * page verifies every round once two have passed.
 */
async function expectPulseGoesOn (seed: number, relaySeen: Record<string, number>, pageSeen: (name: string) => Record<string, number>): Promise<void> {
  const bus = new PulseBus(seed)
  const pages = bus.add([
    { name: 'relay', kind: 'anchor', seen: relaySeen },
    ...PAGES.map((name): NodeSpec => ({ name, kind: 'honest', seen: pageSeen(name) }))
  ]).slice(1)
  await bus.runRounds(2)
  const from = bus.round
  await bus.runRounds(12)
  for (const node of pages) expect(verifiedIn(node, from, bus.round - 1), `${node.name} verified`).toBe(bus.round - 1 - from)
}

/** Everyone else's view of every page: `before` verified rounds short of aged. */
function seenBy (before: number): Record<string, number> {
  return Object.fromEntries(PAGES.map(name => [name, AGE_ROUNDS - before]))
}

describe('the pulse while a young network ages', () => {
  it('a relay that counts one page aged a round before the pages do keeps verifying all of them', async () => {
    await expectPulseGoesOn(21, { ...seenBy(3), b: AGE_ROUNDS - 1 }, () => seenBy(3))
  })

  it('a page that counts one peer aged before the others do stays on their chain', async () => {
    await expectPulseGoesOn(22, seenBy(3), name => name === 'a' ? { ...seenBy(3), b: AGE_ROUNDS - 1 } : seenBy(3))
  })

  it('pages that count each other aged before they count themselves still find their drawn validators', async () => {
    await expectPulseGoesOn(23, seenBy(3), name => ({ ...seenBy(1), [name]: AGE_ROUNDS - 4 }))
  })
})
