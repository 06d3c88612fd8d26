import { errorMessage } from './format.ts'

/**
 * A panel's user action: one at a time, with the error it last ended with, shown by name to the user.
 * Panels share it rather than each keeping its own busy flag and try/catch.
 */
export class PanelAction {
  busy = $state(false)
  error = $state('')

  /** Runs `action` unless one is running; `after` runs however it ended (to re-read what it changed). */
  async run (action: () => Promise<void>, after?: () => void): Promise<void> {
    if (this.busy) return
    this.busy = true
    this.error = ''
    try {
      await action()
    } catch (err) {
      this.error = errorMessage(err)
    } finally {
      this.busy = false
      after?.()
    }
  }
}
