// Hooks that outlive the response (issue 18): a request counts as in flight until its onResponse hooks
// (async ones included) have settled, and likewise its onRequestAbort hooks; the app's onClose and the exit
// come after. In a real child process with real signals; the hooks end when the test creates a file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { build } from './helpers/app.js'
import { fixture, msg, startChild } from './helpers/child.js'

t.test('async onResponse and onRequestAbort hooks in flight at SIGTERM finish before onClose and the exit', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-hooks-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const auditGate = join(dir, 'audit')
  const abortGate = join(dir, 'abort')
  const child = startChild(fixture('response-hooks.ts'), [auditGate, abortGate])
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const port = await child.port
  const url = `http://127.0.0.1:${port}`

  const audited = await request(`${url}/audited`, { reset: true })
  t.equal(audited.statusCode, 200, 'the response is sent')
  await audited.body.dump()
  await child.waitForLog(msg('audit started'))
  const controller = new AbortController()
  const hang = request(`${url}/hang`, { signal: controller.signal, reset: true })
  await child.waitForLog(msg('hang started'))
  controller.abort()
  await t.rejects(hang)
  await child.waitForLog(msg('abort hook started'))

  child.signal('SIGTERM')
  const closed = await child.waitForLog(msg('listener closed: waiting for requests and tasks'))
  t.equal(closed.pending, 2, 'both requests still count: their hooks run')
  const waiting = await child.waitForLog(msg('still waiting'))
  t.match(waiting, { pending: 2, tasks: [{ kind: 'request', name: 'GET /audited' }, { kind: 'request', name: 'GET /hang' }] })

  writeFileSync(auditGate, '')
  await child.waitForLog(msg('audit written'))
  t.notOk(child.logs.some(msg('onClose: database pool closed')), 'onClose waits for the abort hook too')
  writeFileSync(abortGate, '')

  const exit = await child.exited
  t.equal(exit.code, 0, 'exit 0: nothing was cut')
  const lines = child.logs.map(l => l.msg)
  const order = ['audit written', 'abort hook finished', 'all requests and tasks finished', 'onClose: database pool closed', 'shutdown complete']
  t.same(order.map(m => lines.indexOf(m)).every((at, i, all) => at >= 0 && (i === 0 || at > (all[i - 1] as number))), true,
    `in order: ${order.join(' → ')}`)
  t.notOk(lines.includes('hard deadline reached: exiting now'))
})

t.test('a hook that fails ends its request\'s hooks: the wait does not hang on it', async t => {
  for (const style of ['async', 'callback', 'throws'] as const) {
    let ran!: () => void
    const hookRan = new Promise<void>(resolve => { ran = resolve })
    const { app, url } = await build(t, {}, true, app => {
      if (style === 'async') app.addHook('onResponse', async () => { ran(); throw new Error('audit failed') })
      else if (style === 'callback') app.addHook('onResponse', (_req, _reply, done) => { ran(); done(new Error('audit failed')) })
      else app.addHook('onResponse', (_req, _reply, done): void => { ran(); if (style === 'throws') throw new Error('audit failed'); done() })
      app.addHook('onResponse', async () => { t.fail('fastify stops at the first error') })
    })
    const res = await request(`${url}/hello`)
    await res.body.dump()
    t.equal(res.statusCode, 200)
    await hookRan
    const result = await app.graceful.shutdown()
    t.equal(result.exitCode, 0, `${style}: nothing left pending`)
    t.same(result.pending, [])
  }
})
