// The plugin under the runners users start their apps with (issue 10.1): fastify-cli's `fastify start`,
// versions 7 and 8, which wire a close-with-grace of their own and register the app in a child context.
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { CHILD_FILE_TIMEOUT_MS, fixture, msg, startChild } from './helpers/child.js'

t.setTimeout(CHILD_FILE_TIMEOUT_MS)

const cliApp = fixture('cli/app.ts')
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

function freePort (): Promise<number> {
  return new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

async function get (port: number, path: string) {
  const res = await request(`http://127.0.0.1:${port}${path}`, { reset: true })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

for (const cli of ['fastify-cli', 'fastify-cli-7']) {
  t.test(`${cli} start: SIGHUP then SIGTERM with a 2 s request in flight drains and exits 0`, async t => {
    const port = await freePort()
    const bin = fileURLToPath(new URL(`../node_modules/${cli}/cli.js`, import.meta.url))
    const child = startChild(bin, ['start', '-l', 'info', '-a', '127.0.0.1', '-p', String(port), cliApp])
    t.teardown(() => { child.proc.kill('SIGKILL') })
    await child.waitForLog(l => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
    t.match(await child.waitForLog(l => typeof l.msg === 'string' && l.msg.includes('close-with-grace handler removed')),
      { runner: 'fastify-cli', events: ['SIGHUP', 'SIGTERM', 'SIGINT', 'beforeExit', 'uncaughtException', 'unhandledRejection'] },
      "fastify-cli's close-with-grace handlers are taken over, and the log says so")
    t.equal((await get(port, '/readyz')).status, 200)
    const slow = get(port, '/slow?ms=2000')
    await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/slow?ms=2000')
    const at = performance.now()
    child.signal('SIGHUP')
    await sleep(10)
    child.signal('SIGTERM')
    await child.waitForLog(l => l.msg === 'signal received: joining the running shutdown' && l.signal === 'SIGTERM')
    t.equal((await get(port, '/readyz')).status, 503, 'readiness 503 during the drain')
    const fresh = await get(port, '/slow?ms=10')
    t.equal(fresh.status, 200, 'an ordinary request during the drain is served')
    t.equal(fresh.headers.connection, 'close')
    const answered = await slow
    t.equal(answered.status, 200, 'the request in flight answered 200')
    const exit = await child.exited
    t.equal(exit.code, 0, 'exit 0')
    t.ok(exit.at - at >= 2900, `after the request and the drain (3 s: long enough for the probes above on a busy machine) (${Math.round(exit.at - at)} ms)`)
    t.notOk(child.logs.some(l => /second|killed by timeout/.test(String(l.msg))), "fastify-cli's own exits never fired")
    t.match(child.logs.find(msg('shutdown complete')), { exitCode: 0 })
  })
}

t.test("a server.ts with its own close-with-grace (fastify-cli's eject template): taken over, drains, exit 0", async t => {
  const child = startChild(fixture('own-close-with-grace.ts'))
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const port = await child.port
  t.match(await child.waitForLog(l => typeof l.msg === 'string' && l.msg.includes('close-with-grace handler removed')),
    { runner: 'close-with-grace', msg: /^another close-with-grace handler removed/ })
  const slow = get(port, '/slow')
  await child.waitForLog(l => l.msg === 'incoming request')
  child.signal('SIGHUP')
  await sleep(10)
  child.signal('SIGTERM')
  t.equal((await slow).status, 200)
  const exit = await child.exited
  t.equal(exit.code, 0)
  t.notOk(child.logs.some(l => /killed by timeout|second/.test(String(l.msg))))
})
