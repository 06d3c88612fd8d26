import { describe, expect, it } from 'vitest'
import { spaceDims } from '../../src/core/memory/spaces.ts'

describe('spaceDims', () => {
  it('reads raw-<d> and knows the built-in embedding models', () => {
    expect(spaceDims('raw-4')).toBe(4)
    expect(spaceDims('raw-4096')).toBe(4096)
    expect(spaceDims('all-MiniLM-L6-v2')).toBe(384)
    expect(spaceDims('model2vec-64d')).toBe(64)
  })

  it('says nothing of other spaces, and of raw names that are not a plain count', () => {
    for (const space of ['bag-of-letters', 'raw-', 'raw-0', 'raw-04', 'raw-10000', 'raw-4x', ' raw-4', 'RAW-4']) expect(spaceDims(space), space).toBeUndefined()
  })
})
