import { InvalidVectorError } from '../errors.ts'

/**
 * The length of the vectors of one batch of embeddings split over workers. It is the model's own when
 * this node knows it; otherwise the first shard's. Whichever worker answered first used to decide it:
 * one fresh key answering every shard at once with one-dimensional vectors made every honest worker's
 * answer a failure, until the batch ran on the liar alone.
 */
export class BatchDims {
  private dims: number | undefined

  constructor (known?: number) {
    this.dims = known
  }

  get value (): number | undefined {
    return this.dims
  }

  /** Takes a shard's length; throws InvalidVectorError when it is not the batch's, so that worker failed and its shard goes to the next. */
  accept (worker: string, dims: number): void {
    if (this.dims !== undefined && dims !== this.dims) throw new InvalidVectorError(`${worker} answered with ${dims} dimensions, not ${this.dims}`)
    this.dims = dims
  }
}
