import { errorMessage, HyperspaceError } from './errors.ts'

/** One part that failed to stop, by the name its lifecycle lists it under. */
export interface StopFailure {
  part: string
  error: unknown
}

function stopFailuresText (failures: readonly StopFailure[]): string {
  return failures.map(f => `${f.part}: ${errorMessage(f.error)}`).join('; ')
}

/**
 * A part of a lifecycle failed to start; the parts started before it were stopped again, in reverse
 * (those that failed to stop are in `stopFailures`). `cause` is what the part threw.
 */
export class LifecycleStartError extends HyperspaceError {
  override name = 'LifecycleStartError'

  constructor (readonly part: string, cause: unknown, readonly stopFailures: readonly StopFailure[]) {
    super('ERR_START_FAILED', `${part} did not start: ${errorMessage(cause)}` +
      (stopFailures.length > 0 ? `; and stopping what had started failed: ${stopFailuresText(stopFailures)}` : ''), { cause })
  }
}

/** Parts of a lifecycle failed to stop; every other part was stopped all the same. */
export class LifecycleStopError extends HyperspaceError {
  override name = 'LifecycleStopError'

  constructor (readonly failures: readonly StopFailure[]) {
    super('ERR_STOP_FAILED', `Parts did not stop cleanly: ${stopFailuresText(failures)}`)
  }
}
