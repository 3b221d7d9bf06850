// App shapes that worked before one shutdown per process and must keep working (issue 18), each in a child
// process with a real SIGTERM and real clients.
import { existsSync } from 'node:fs'
import { Agent, request } from 'undici'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { fixture, msg, startChild } from './helpers/child.js'

const shapes = fixture('shapes.ts')

async function start (t: Test, shape: string): Promise<{ child: ReturnType<typeof startChild>, base: string, dispatcher?: Agent, path?: string }> {
  const child = startChild(shapes, [shape])
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const line = await child.waitForLog(msg('listening'))
  if (typeof line.path === 'string') {
    const dispatcher = new Agent({ connect: { socketPath: line.path } })
    return { child, base: 'http://localhost', dispatcher, path: line.path }
  }
  return { child, base: `http://127.0.0.1:${line.port as number}` }
}

for (const shape of ['force-close', 'server-factory', 'unix', 'under-pressure', 'on-close-2s']) {
  t.test(`${shape}: a slow request in flight at SIGTERM finishes 200, exit 0`, async t => {
    const { child, base, dispatcher, path } = await start(t, shape)
    const slow = request(`${base}/slow?ms=1000`, { dispatcher, reset: true })
    await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/slow?ms=1000')
    child.signal('SIGTERM')
    const res = await slow
    t.equal(res.statusCode, 200)
    t.same(await res.body.json(), { slept: 1000 })
    const exit = await child.exited
    t.equal(exit.code, 0, 'exit 0')
    t.notOk(child.logs.some(msg('hard deadline reached: exiting now')), 'no hard deadline')
    const lines = child.logs.map(l => l.msg)
    t.ok(lines.indexOf('all requests and tasks finished') < lines.indexOf('shutdown complete'))
    if (shape === 'on-close-2s') {
      t.ok(lines.indexOf('all requests and tasks finished') < lines.indexOf('onClose started'), 'onClose after the wait')
      t.ok(lines.indexOf('onClose finished') < lines.indexOf('shutdown complete'), 'and waited for')
    }
    if (path !== undefined) t.notOk(existsSync(path), 'the socket file is removed')
    await dispatcher?.close()
  })
}

t.test('SIGTERM during a slow start-up: exit 0 promptly, no drain', async t => {
  const child = startChild(shapes, ['slow-start'])
  t.teardown(() => { child.proc.kill('SIGKILL') })
  await child.waitForLog(msg('slow start-up'))
  const at = performance.now()
  child.signal('SIGTERM')
  const exit = await child.exited
  t.equal(exit.code, 0)
  t.ok(exit.at - at < 20_000, `promptly (${Math.round(exit.at - at)} ms), not after the 60 s start-up`)
  t.notOk(child.logs.some(msg('draining: readiness answers 503, requests still served')), 'no drain: it never was an endpoint')
})

t.test('a slow upload in flight and 200 idle keep-alive connections: the upload finishes 200, exit 0', async t => {
  const { child, base } = await start(t, 'upload')
  const idle = new Agent({ connections: 200, pipelining: 1 })
  t.teardown(() => idle.destroy())
  await Promise.all(Array.from({ length: 200 }, async () => { await (await request(`${base}/slow?ms=1`, { dispatcher: idle })).body.dump() }))
  let sent = 0
  async function * body (): AsyncGenerator<Buffer> {
    for (let i = 0; i < 20; i++) {
      yield Buffer.alloc(64 * 1024)
      sent++
      if (i === 2) child.signal('SIGTERM')
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  const res = await request(`${base}/upload`, { method: 'POST', body: Readable.from(body()), headers: { 'content-type': 'application/octet-stream' }, reset: true })
  t.equal(res.statusCode, 200, 'the upload in flight finished')
  t.same(await res.body.json(), { bytes: 20 * 64 * 1024 })
  t.equal(sent, 20)
  const exit = await child.exited
  t.equal(exit.code, 0, 'exit 0')
  t.ok(child.logs.some(msg('graceful shutdown started')))
})
