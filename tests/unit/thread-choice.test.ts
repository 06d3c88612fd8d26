import { describe, expect, it } from 'vitest'
import { chooseThreads, median, type ThreadCandidate } from '../../src/core/thread-choice.ts'

/** A candidate whose runs take the given times in turn, recording the order it ran in. */
function candidate (threads: number, times: number[], order: number[]): ThreadCandidate {
  let run = 0
  return { threads, time: async () => { order.push(threads); return times[run++ % times.length] as number } }
}

describe('chooseThreads', () => {
  it('keeps one thread when more are slower', async () => {
    const order: number[] = []
    const choice = await chooseThreads([candidate(1, [10], order), candidate(2, [40], order)], 3)
    expect(choice.threads).toBe(1)
    expect(choice.medians).toEqual(new Map([[1, 10], [2, 40]]))
  })

  it('takes more threads only when they are clearly faster', async () => {
    expect((await chooseThreads([candidate(1, [10], []), candidate(4, [5], [])], 3)).threads).toBe(4)
    expect((await chooseThreads([candidate(1, [10], []), candidate(4, [9.5], [])], 3)).threads).toBe(1)
  })

  it('judges by the median, so one disturbed run does not decide', async () => {
    const choice = await chooseThreads([candidate(1, [10, 500, 10], []), candidate(2, [9.5, 9.5, 9.5], [])], 3)
    expect(choice.medians.get(1)).toBe(10)
    expect(choice.threads).toBe(1)
  })

  it('interleaves the candidates, rotating who goes first', async () => {
    const order: number[] = []
    await chooseThreads([candidate(1, [1], order), candidate(2, [1], order)], 3)
    expect(order).toEqual([1, 2, 2, 1, 1, 2])
  })

  it('counts a time that is not a number as infinitely slow', async () => {
    expect((await chooseThreads([candidate(1, [NaN], []), candidate(2, [5], [])], 1)).threads).toBe(2)
    expect((await chooseThreads([candidate(1, [5], []), candidate(2, [-1], [])], 1)).threads).toBe(1)
  })

  it('rejects no candidates and no rounds', async () => {
    await expect(chooseThreads([], 3)).rejects.toBeInstanceOf(RangeError)
    await expect(chooseThreads([candidate(1, [1], [])], 0)).rejects.toBeInstanceOf(RangeError)
  })
})

describe('median', () => {
  it('is the middle value, the mean of the middle two, or NaN for none', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([])).toBeNaN()
  })
})
