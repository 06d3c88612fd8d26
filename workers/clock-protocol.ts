/** Messages between the page and the clock worker. */
export type ClockRequest =
  | { type: 'after', id: number, ms: number }
  | { type: 'every', id: number, ms: number }
  | { type: 'cancel', id: number }

export interface ClockFired { type: 'fire', id: number }
