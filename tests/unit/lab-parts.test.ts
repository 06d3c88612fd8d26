import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { pipeTransport } from '../../lab/cdp-pipe.ts'
import { leftoversAmong, RUN_PREFIX } from '../../lab/netns.ts'
import { checkReport, checkSummary, type LabReport } from '../../lab/report.ts'
import type { FaultResult } from '../../lab/faults.ts'
import type { PairResult } from '../../lab/pairs.ts'

describe('lab namespaces of concurrent runs', () => {
  const alive = new Set([100, 200])
  const isAlive = (pid: number): boolean => alive.has(pid)

  it('names this run\'s namespaces after its process, with no dash an older lab version would remove', () => {
    expect(RUN_PREFIX).toBe(`hslab${process.pid}-`)
  })

  it('leaves a live run\'s namespaces alone and removes those of ended runs and its own', () => {
    const names = ['hslab100-inet', 'hslab100-h-cone-1', 'hslab200-inet', 'hslab300-inet', 'hslab300-r-cone-1', 'other-ns']
    expect(leftoversAmong(names, 200, isAlive, false)).toEqual(['hslab200-inet', 'hslab300-inet', 'hslab300-r-cone-1'])
  })

  it('removes an older version\'s unnumbered namespaces only when nothing runs in any of them', () => {
    const names = ['hslab-inet', 'hslab-h-cone-1', 'hslab100-inet']
    expect(leftoversAmong(names, 999, isAlive, false)).toEqual([])
    expect(leftoversAmong(names, 999, isAlive, true)).toEqual(['hslab-inet', 'hslab-h-cone-1'])
  })
})

describe('CDP pipe transport', () => {
  function open (): { toBrowser: PassThrough, fromBrowser: PassThrough, received: object[], closed: Array<string | undefined>, transport: ReturnType<typeof pipeTransport> } {
    const toBrowser = new PassThrough()
    const fromBrowser = new PassThrough()
    const transport = pipeTransport(toBrowser, fromBrowser)
    const received: object[] = []
    const closed: Array<string | undefined> = []
    transport.onmessage = message => { received.push(message) }
    transport.onclose = reason => { closed.push(reason) }
    return { toBrowser, fromBrowser, received, closed, transport }
  }

  it('writes each command as JSON ended by a NUL byte', () => {
    const { toBrowser, transport } = open()
    transport.send({ id: 1, method: 'Browser.getVersion' })
    expect(toBrowser.read()?.toString()).toBe('{"id":1,"method":"Browser.getVersion"}\0')
  })

  it('reads messages split across chunks and several in one chunk', async () => {
    const { fromBrowser, received } = open()
    fromBrowser.write('{"id":1,"res')
    fromBrowser.write('ult":{}}\0{"id":2}\0{"method":')
    fromBrowser.write('"Target.attachedToTarget"}\0')
    await new Promise(resolve => setImmediate(resolve))
    expect(received).toEqual([{ id: 1, result: {} }, { id: 2 }, { method: 'Target.attachedToTarget' }])
  })

  it('closes with a reason on a message that is not JSON, without throwing', async () => {
    const { fromBrowser, received, closed } = open()
    fromBrowser.write('{"id":1}\0not json\0{"id":3}\0')
    await new Promise(resolve => { fromBrowser.once('close', resolve) })
    expect(received).toEqual([{ id: 1 }])
    expect(closed).toHaveLength(1)
    expect(closed[0]).toMatch(/not JSON/)
  })
})

describe('lab --check', () => {
  const pair = (overrides: Partial<PairResult>): PairResult => ({ a: 'cone', b: 'cone', direct: true, viaTurn: false, ms: 900, ice: [], inference: true, pulse: true, ...overrides })
  const fault = (overrides: Partial<FaultResult>): FaultResult => ({ fault: 'relay-restart', recoveredMs: 5000, pointsContinued: true, roundsLost: 2, ...overrides })
  const report = (pairs: PairResult[], faults: FaultResult[]): LabReport => ({ links: [], pairs, faults })

  it('passes a cone pair direct, a symmetric pair via TURN and a recovered fault', () => {
    const items = checkReport(report([pair({}), pair({ a: 'symmetric', b: 'symmetric', direct: false, viaTurn: true })], [fault({})]))
    expect(items.every(item => item.failures.length === 0)).toBe(true)
    expect(checkSummary(items)).toBe('lab: 3 passed, 0 failed')
  })

  it('fails a cone pair that only went via TURN, and a fault whose points stopped', () => {
    const items = checkReport(report([pair({ direct: false, viaTurn: true })], [fault({ pointsContinued: false })]))
    expect(items.map(item => item.failures)).toEqual([['no direct connection'], ['points stopped counting']])
    expect(checkSummary(items)).toBe('lab: 0 passed, 2 failed')
  })

  it('fails the hidden tab unless the page was hidden and had rounds verified while it was', () => {
    const visible = fault({ fault: 'tab-hidden', hidden: { visibilityState: 'visible', rounds: 10, verified: 10, timerHz: 10 } })
    const stalled = fault({ fault: 'tab-hidden', hidden: { visibilityState: 'hidden', rounds: 10, verified: 0, timerHz: 1 } })
    const working = fault({ fault: 'tab-hidden', hidden: { visibilityState: 'hidden', rounds: 10, verified: 8, timerHz: 1 } })
    expect(checkReport(report([], [visible, stalled, working])).map(item => item.failures)).toEqual([
      ['the page was not hidden (visibilityState visible)'],
      ['no round verified while the page was hidden'],
      []
    ])
  })
})
