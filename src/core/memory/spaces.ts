import { ALL_MINILM_L6_V2, MODEL2VEC_64D } from '../embedding/models.ts'

const BUILT_IN_MODEL_DIMS = new Map<string, number>([[ALL_MINILM_L6_V2.id, ALL_MINILM_L6_V2.dims], [MODEL2VEC_64D.id, MODEL2VEC_64D.dims]])
const RAW_SPACE = /^raw-([1-9][0-9]{0,3})$/

/**
 * The dimensions every vector of `space` has, when the space's name says: `raw-<d>` (raw vectors), or
 * an embedding model every node ships with. Other spaces take their dimensions from the first vector
 * a holder stores in them.
 */
export function spaceDims (space: string): number | undefined {
  const raw = RAW_SPACE.exec(space)
  return raw === null ? BUILT_IN_MODEL_DIMS.get(space) : Number(raw[1])
}
