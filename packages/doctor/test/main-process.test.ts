// The doctor's model of the main process, case by case, and that model checked against the real shells
// of this machine: dash (Debian's /bin/sh), bash, and busybox sh (Alpine's /bin/sh) when installed.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, readlinkSync } from 'node:fs'
import { basename } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { mainProcess, tokenize, type ShellKind, type StartContext, type StartPart } from '../src/main-process.js'

const cmd = (argv: string[] | string, keyword = 'CMD'): StartPart =>
  typeof argv === 'string' ? { keyword, file: 'Dockerfile', line: 9, argv: undefined, text: argv } : { keyword, file: 'Dockerfile', line: 9, argv, text: argv.join(' ') }
const context = (shell: ShellKind | undefined, scripts: Record<string, string> = {}, image: string[] = []): StartContext =>
  ({ shell, readScript: (path) => scripts[path.replace(/^\.\//, '')], imageScript: (path) => image.includes(path), lookedIn: () => 'the doctor looked for it in the test' })
const judge = (parts: StartPart[], shell: ShellKind | 'unknown' = 'dash', scripts: Record<string, string> = {}, image: string[] = []) => {
  const main = mainProcess(parts, context(shell === 'unknown' ? undefined : shell, scripts, image))
  return `${main.program ?? '?'}${main.finding ? ` ${main.finding.rule} ${main.finding.severity}` : ''}${main.privilegeDrop ? ` drop:${main.privilegeDrop}` : ''}`
}

t.test('wrappers, inits and privilege drops', async (t) => {
  t.equal(judge([cmd(['tini', '-s', '--', 'node', 'a.js'])]), 'node')
  t.equal(judge([cmd(['tini', '--'])]), '?', 'nothing after the init: the image decides')
  t.equal(judge([cmd(['env', 'NODE_ENV=production', 'node', 'a.js'])]), 'node')
  t.equal(judge([cmd(['gosu', 'node', 'node', 'a.js'])]), 'node drop:gosu')
  t.equal(judge([cmd(['su-exec', '1000:1000', 'npm', 'start'])]), 'npm cmd-wrapper error drop:su-exec')
  t.equal(judge([cmd(['setpriv', '--reuid=1000', '--regid=1000', '--init-groups', 'node', 'a.js'])]), 'node drop:setpriv')
  t.equal(judge([cmd(['setpriv', '--reuid=1000'])]), '? drop:setpriv')
  t.equal(judge([cmd(['pm2', 'start', 'app.js', '--no-daemon'])]), 'pm2 process-manager error')
  t.equal(judge([cmd(['nodemon', 'app.js'])]), 'nodemon process-manager error')
  t.match(mainProcess([cmd(['npx', 'pm2-runtime', 'app.js'])], context('dash')).finding, { fix: 'CMD ["node", "<the file your start script runs>"]' }, 'npx pm2-runtime: not node_modules/.bin/pm2-runtime')
  t.match(mainProcess([cmd(['npx', '--yes', 'serve'])], context('dash')).finding, { fix: 'CMD ["node", "<the file your start script runs>"]' })
  t.equal(judge([cmd(['node', '--run', 'start'])]), 'node cmd-wrapper error')
  t.equal(judge([cmd(['./server'])]), 'server', 'an unknown program is not judged')
})

t.test('shells: which one hands over to the last command', async (t) => {
  t.equal(judge([cmd(['sh', '-c', 'node a.js'])], 'dash'), 'sh cmd-wrapper error', 'dash keeps itself')
  t.match(mainProcess([cmd(['dash', '-c', 'node a.js'])], context('busybox')).finding, { message: 'CMD ["dash", "-c", "node a.js"] keeps dash as the main process, with node as its child' }, 'dash named, whatever /bin/sh is')
  t.equal(judge([cmd(['sh', '-c', 'node a.js'])], 'busybox'), 'node')
  t.equal(judge([cmd(['bash', '-c', 'cd /app && node a.js'])], 'dash'), 'node', 'bash, whatever /bin/sh is')
  t.equal(judge([cmd(['bash', '-c', 'node a.js > /tmp/log'])]), 'bash cmd-wrapper error', 'bash keeps itself for a redirection')
  t.equal(judge([cmd(['ash', '-c', 'node a.js > /tmp/log'])]), 'node', 'busybox does not')
  t.equal(judge([cmd(['sh', '-c', 'node a.js || true'])], 'busybox'), 'sh cmd-wrapper error')
  t.equal(judge([cmd(['sh', '-c', 'node a.js | tee log'])], 'busybox'), 'sh cmd-wrapper error')
  t.equal(judge([cmd(['sh', '-c', 'node a.js & wait'])], 'busybox'), 'sh cmd-wrapper error')
  t.equal(judge([cmd(['sh', '-c', 'node a.js &'])], 'busybox'), 'sh cmd-wrapper error')
  t.equal(judge([cmd(['sh', '-c', 'trap "echo bye" TERM; node a.js'])], 'busybox'), 'sh cmd-wrapper error')
  t.equal(judge([cmd(['sh', '-c', 'if [ -f x ]; then node a.js; fi'])], 'busybox'), 'sh cmd-wrapper error', 'compound commands: not modelled, reported')
  t.equal(judge([cmd(['sh', '-c', 'PORT=8080 npx next start'])], 'busybox'), 'npx cmd-wrapper error')
  t.equal(judge([cmd(['sh', '-c', 'cd /app && exec npm start'])], 'dash'), 'npm cmd-wrapper error', 'exec npm: npm is the main process')
  t.equal(judge([cmd(['sh', '-c'])], 'dash'), 'sh cmd-wrapper error')
  t.equal(judge([cmd(['sh', '-c', 'node a.js'])], 'none'), 'sh cmd-wrapper error', 'no shell in the image')
  t.equal(judge([cmd('node a.js')], 'none'), 'sh cmd-shell-form error')
  t.equal(judge([cmd(['sh', '-c', 'node a.js'])], 'unknown'), 'sh cmd-wrapper warning', 'an unknown /bin/sh: it may or may not hand over')
  t.equal(judge([cmd(['sh', '-c', 'node a.js || exit 1'])], 'unknown'), 'sh cmd-wrapper error', 'not handed over by any shell')

  const fix = (argv: string[] | string, shell: ShellKind = 'dash') => mainProcess([cmd(argv)], context(shell)).finding?.fix
  t.equal(fix(['sh', '-c', 'node migrate.js && node a.js']), 'CMD ["sh", "-c", "node migrate.js && exec node a.js"]', 'exec before the last command')
  t.equal(fix('node migrate.js && node a.js'), 'CMD node migrate.js && exec node a.js')
  t.equal(fix('node a.js'), 'CMD ["node", "a.js"]', 'a single command: the exec form')
  t.equal(fix(['sh', '-c', 'npm run migrate && npm start']), 'CMD ["node", "<the file your start script runs>"] (exec npm would still make npm the main process)', 'no "prefix with exec" where it does not help')
  t.equal(fix(['sh', '-c', 'node a.js | tee log']), 'make exec node … the last command of the script, with nothing after it (no ||, | or &), or use CMD ["node", "<the file your start script runs>"]')
  t.equal(fix(['sh', '-c', '']), 'CMD ["node", "<the file your start script runs>"]')
  t.match(mainProcess([cmd('npx fastify start')], context('busybox')).finding, { message: 'CMD npx fastify start makes npx the main process (busybox sh -c hands over to its last command), with Node as its child' })
  t.match(mainProcess([cmd('node a.js && node b.js')], context('dash')).finding, { message: /^CMD node a\.js && node b\.js \(in shell form, Docker runs \/bin\/sh -c "node a\.js && node b\.js"\) keeps dash \(\/bin\/sh of Debian-based images\) as the main process, with node as its child$/ })
})

t.test('entrypoint scripts: read, the image\'s own, or unknown', async (t) => {
  const scripts = {
    'entrypoint.sh': '#!/bin/sh\nset -e\nnode migrate.js\nexec "$@"\n',
    'start.sh': '#!/bin/sh\nnode server.js\n',
    'drop.sh': '#!/bin/sh\nchown -R node /data\nexec su-exec node "$@"\n',
    'run.sh': '#!/bin/bash\nexec node dist/main.js\n'
  }
  t.equal(judge([cmd(['./entrypoint.sh'], 'ENTRYPOINT'), cmd(['node', 'a.js'])], 'dash', scripts), 'node')
  t.equal(judge([cmd(['./entrypoint.sh'], 'ENTRYPOINT'), cmd(['npm', 'start'])], 'dash', scripts), 'npm cmd-wrapper error', 'exec "$@" hands over to CMD')
  t.equal(judge([cmd(['start.sh'])], 'dash', scripts), 'start.sh cmd-wrapper error')
  t.equal(judge([cmd(['bash', 'run.sh'])], 'dash', scripts), 'node')
  t.equal(judge([cmd(['drop.sh'], 'ENTRYPOINT'), cmd(['node', 'a.js'])], 'dash', scripts), 'node drop:su-exec')
  t.equal(judge([cmd(['docker-entrypoint.sh'], 'ENTRYPOINT'), cmd(['node', 'a.js'])], 'dash', {}, ['docker-entrypoint.sh']), 'node', 'the official node image\'s own script')
  t.equal(judge([cmd(['docker-entrypoint.sh'], 'ENTRYPOINT'), cmd(['node', 'a.js'])]), 'docker-entrypoint.sh cmd-wrapper warning', 'named but not given: unknown')
})

/* eslint-disable no-template-curly-in-string -- shell variables look like template expressions */
t.test('entrypoint scripts that trap SIGTERM and forward it to Node', async (t) => {
  const trapped = (trap: string) => mainProcess([cmd(['./start.sh'])], context('dash', { 'start.sh': `#!/bin/sh\n${trap}\nnode a.js &\nchild=$!\nwait "$child"\n` }))
  t.match(trapped('trap \'kill -TERM "$child"\' TERM'), { program: 'start.sh', finding: undefined, forwardedBy: './start.sh, which forwards SIGTERM to Node ($child) with a trap on TERM, as SIGTERM' })
  t.match(trapped('trap "kill -s INT $child; wait $child" SIGTERM 2'), { finding: undefined, forwardedBy: /with a trap on TERM INT, as SIGINT$/ }, 'kill -s, signal names and numbers')
  t.match(trapped('trap \'kill ${child}\' 15'), { finding: undefined, forwardedBy: /as SIGTERM$/ }, 'kill without a signal sends SIGTERM')
  t.match(trapped('function stop {\n  kill -HUP "$child"\n}\ntrap stop TERM'), { finding: undefined, forwardedBy: /as SIGHUP$/ }, 'a trap that calls a function')
  t.match(trapped('trap \'echo bye\' TERM'), { finding: { rule: 'cmd-wrapper', severity: 'error', message: /sets a trap on TERM that does not pass the signal on to Node \(no kill "\$child" in it\)/, impact: /Node stops without draining/ } })
  t.match(trapped('trap missing TERM'), { finding: { message: /does not pass the signal on/ } }, 'a function the script does not define')
  t.match(trapped('trap \'kill -s KILL $child\' TERM'), { finding: { message: /sends Node SIGKILL \(kill -s KILL\), which ends it at once/, fix: /trap 'kill -TERM "\$child"; wait "\$child"' TERM/ } })
  t.match(trapped('trap \'kill -TERM "$child"\' INT'), { finding: { message: /starts Node without exec: the shell/, impact: /never drains/ } }, 'a trap without TERM: the shell, PID 1, ignores SIGTERM')
})

t.test('tokenize', async (t) => {
  t.same(tokenize('node -e "console.log(1)" \'a b\' "$@"'), ['node', '-e', 'console.log(1)', 'a b', '"$@"'])
})

// The model above against the real shells: for each script, is node PID of the shell's process itself?
const exe = (pid: number): string => { try { return readlinkSync(`/proc/${pid}/exe`) } catch { return '' } }
const isNode = (path: string): boolean => basename(path) === 'node'
const children = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}
const shells: Array<[string, string[], ShellKind]> = [['dash', ['dash'], 'dash'], ['bash', ['bash'], 'bash'], ['busybox sh', ['busybox', 'sh'], 'busybox']]
const scripts = ['node -e "setTimeout(() => {}, 20000)"', 'cd / && node -e "setTimeout(() => {}, 20000)"', 'node -e "setTimeout(() => {}, 20000)" || true', 'node -e "setTimeout(() => {}, 20000)" > /dev/null']
for (const [name, argv, kind] of shells) {
  const present = spawnSync(argv[0] as string, [...argv.slice(1), '-c', 'true']).status === 0
  t.test(`the model agrees with ${name} on this machine`, { skip: present ? false : `${name} is not installed here` }, async (t) => {
    for (const script of scripts) {
      const child = spawn(argv[0] as string, [...argv.slice(1), '-c', script], { stdio: 'ignore' })
      const pid = child.pid as number
      // What runs is read from /proc/<pid>/exe, not from the process name: Node 24 names its main thread
      // (`ps -o comm=` shows MainThread, 26 node-MainThread). Waited for until node runs, as the shell itself
      // (it exec'd) or as its child (it forked); the bound only a hang reaches.
      let main = ''
      let forked = false
      for (const deadline = performance.now() + 20_000; performance.now() < deadline;) {
        main = exe(pid)
        forked = children(pid).some(c => isNode(exe(c)))
        if (isNode(main) || forked) break
        await sleep(20)
      }
      spawnSync('pkill', ['-KILL', '-P', String(pid)])
      child.kill('SIGKILL')
      t.ok(isNode(main) || forked, `${name} -c '${script}': node started`)
      const comm = isNode(main) ? 'node' : basename(main)
      const model = mainProcess([cmd(['sh', '-c', script])], context(kind)).program
      t.equal(model === 'node', comm === 'node', `${name} -c '${script}': ${comm === 'node' ? 'node is' : `${comm} stays`} the main process`)
    }
  })
}
