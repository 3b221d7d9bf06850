// The doctor's command line: exit codes, human and JSON output, colour, usage errors. The bin itself runs
// as a child process (doctor/cli.ts through tap's TypeScript loader, inherited from process.execArgv).
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { main, type Io } from '../src/main.js'

const repo = fileURLToPath(new URL('../../..', import.meta.url))
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url))
const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url))

function run (argv: string[], opts: { cwd?: string, tty?: boolean, env?: NodeJS.ProcessEnv } = {}) {
  let stdout = ''
  let stderr = ''
  const io: Io = {
    cwd: opts.cwd ?? repo,
    env: opts.env ?? {},
    stdout: { write: (text: string) => { stdout += text }, isTTY: opts.tty },
    stderr: { write: (text: string) => { stderr += text } }
  }
  const code = main(argv, io)
  return { code, stdout, stderr }
}

function spawnCli (args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [...process.execArgv, cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

t.test('the bin, as a child process: exit 0 clean, 1 with errors, 2 for unreadable input', async (t) => {
  const clean = spawnCli(['doctor'], repo)
  t.equal(clean.code, 0, 'the project\'s own Dockerfile and k8s/ pass')
  t.match(clean.stdout, /^ok: 0 errors, 0 warnings in Dockerfile, k8s\/deployment.yaml, k8s\/pdb.yaml, k8s\/service.yaml$/m)
  t.equal(clean.stderr, '')

  const broken = spawnCli(['doctor', '--k8s', 'k8s/seed.yaml'], `${fixtures}schema-seed`)
  t.equal(broken.code, 1)
  t.match(broken.stdout, /k8s\/seed.yaml:11 {2}error {2}schema\n {2}spec.strategy.rollingUpdate.maxUnavaliable: unknown field \(did you mean maxUnavailable\?\)/)

  const missing = spawnCli(['doctor', '--dockerfile', 'nope/Dockerfile'], repo)
  t.equal(missing.code, 2)
  t.equal(missing.stdout, '')
  t.equal(missing.stderr, 'fastify-graceful-k8s: cannot read nope/Dockerfile: no such file or directory\n', 'a clear message, no stack trace')
})

t.test('human output: every field of a finding, the timing used, a summary', async (t) => {
  const { code, stdout, stderr } = run(['doctor'], { cwd: `${fixtures}grace-period` })
  t.equal(code, 1)
  t.equal(stderr, '')
  t.equal(stdout, [
    'k8s/app.yaml:14  error  grace-period',
    '  Deployment/web: terminationGracePeriodSeconds 30 is less than the 33 s the shutdown needs: drain 5000 ms (plugin default) + ' +
      'timeout 25000 ms (env SHUTDOWN_TIMEOUT_MS, k8s/app.yaml:23) + 1000 ms hard deadline + 2000 ms slack',
    '  at rollout: the kubelet SIGKILLs the container before the plugin has finished: requests and tasks still running are lost, and the exit is never logged',
    '  fix: terminationGracePeriodSeconds: 33 (or lower SHUTDOWN_TIMEOUT_MS)',
    '',
    'k8s/app.yaml:3 Deployment/web: drain 5000 ms (plugin default), timeout 25000 ms (env SHUTDOWN_TIMEOUT_MS, k8s/app.yaml:23), terminationGracePeriodSeconds 30 (needs 33)',
    'failed: 1 error, 0 warnings in k8s/app.yaml',
    ''
  ].join('\n'))
})

t.test('warnings alone exit 0; documents of other kinds are listed as not checked', async (t) => {
  const { code, stdout } = run(['doctor', '--k8s', 'k8s/app.yaml'], { cwd: `${fixtures}pdb-blocks-eviction` })
  t.equal(code, 0)
  t.match(stdout, /^ok: 0 errors, 1 warning in k8s\/app.yaml$/m)
  const other = run(['doctor', '--k8s=k8s'], { cwd: `${fixtures}unchecked-kinds` })
  t.match(other.stdout, /^k8s\/app.yaml:42 v1 ConfigMap: not checked$/m)
  t.match(other.stdout, /^failed: 1 error, 0 warnings in k8s\/app.yaml$/m)
})

t.test('colour only on a terminal, and never with NO_COLOR', async (t) => {
  const cwd = `${fixtures}prestop-missing`
  t.notMatch(run(['doctor'], { cwd }).stdout, '\x1b[', 'not a TTY: plain')
  const tty = run(['doctor'], { cwd, tty: true }).stdout
  t.match(tty, '\x1b[33mwarning\x1b[39m')
  t.match(tty, '\x1b[32mok: 0 errors, 1 warning')
  t.match(run(['doctor'], { cwd: `${fixtures}readiness-missing`, tty: true }).stdout, '\x1b[31merror\x1b[39m')
  t.notMatch(run(['doctor'], { cwd, tty: true, env: { NO_COLOR: '1' } }).stdout, '\x1b[')
})

t.test('--json: the whole report for machines', async (t) => {
  const { code, stdout } = run(['doctor', '--json', '--drain-delay', '8000', '--timeout', '20000'], { cwd: `${fixtures}readiness-slow` })
  t.equal(code, 1)
  const report = JSON.parse(stdout)
  t.match(report, {
    ok: false,
    errors: 1,
    warnings: 0,
    checked: ['k8s/app.yaml'],
    skipped: [],
    workloads: [{
      file: 'k8s/app.yaml',
      kind: 'Deployment',
      name: 'web',
      drainDelay: { value: 8000, source: '--drain-delay' },
      timeout: { value: 20000, source: '--timeout' },
      terminationGracePeriodSeconds: 40,
      neededSeconds: 31
    }],
    findings: [{ rule: 'readiness-slow', severity: 'error', file: 'k8s/app.yaml', line: 25, message: String, impact: String, fix: String }]
  })
  t.same(Object.keys(report), ['ok', 'errors', 'warnings', 'checked', 'skipped', 'notJudged', 'notes', 'workloads', 'findings'], 'the summary comes first')
  t.equal(JSON.parse(run(['doctor', '--json'], { cwd: `${fixtures}clean-k8s` }).stdout).ok, true)
})

t.test('flags: paths of the plugin, several --k8s values, values inline or apart', async (t) => {
  const cwd = `${fixtures}readiness-path`
  t.equal(run(['doctor'], { cwd }).code, 1)
  t.equal(run(['doctor', '--readiness-path', '/healthz'], { cwd }).code, 0, 'the app serves readiness on /healthz')
  const live = run(['doctor', '--liveness-path', '/alive', '--json'], { cwd: `${fixtures}liveness-on-readiness` })
  t.equal(JSON.parse(live.stdout).findings[0].fix, 'livenessProbe.httpGet.path: /alive', 'the fix names the app\'s liveness path')
  const both = run(['doctor', '--k8s', `${fixtures}clean-k8s/k8s/app.yaml`, `${fixtures}prestop-missing/k8s`, '--json'])
  t.same(JSON.parse(both.stdout).checked, ['packages/doctor/test/fixtures/clean-k8s/k8s/app.yaml', 'packages/doctor/test/fixtures/prestop-missing/k8s/app.yaml'])
  const repeated = run(['doctor', '--k8s', 'k8s/deployment.yaml', '--k8s', 'k8s/pdb.yaml', '--dockerfile', 'Dockerfile', '--json'])
  t.same(JSON.parse(repeated.stdout).checked, ['Dockerfile', 'k8s/deployment.yaml', 'k8s/pdb.yaml'])
})

t.test('scope flags: the Node containers by default, the others in one line', async (t) => {
  const cwd = `${fixtures}fa-other-containers`
  const { code, stdout } = run(['doctor'], { cwd })
  t.equal(code, 0)
  t.match(stdout, /^not judged \(not known to run Node\): StatefulSet\/db postgres \(postgres:16\.4\), Deployment\/cache redis \(redis:7\.4-alpine\), Deployment\/cert-manager cert-manager-controller \(quay\.io\/jetstack\/cert-manager-controller:v1\.16\.2\); --all-containers judges them$/m)
  const all = run(['doctor', '--all-containers', '--json'], { cwd })
  t.equal(all.code, 1, 'judged, postgres and redis run as root')
  t.same(JSON.parse(all.stdout).notJudged, [])
  const one = JSON.parse(run(['doctor', '--workload', 'cache', '--all-containers', '--json'], { cwd }).stdout)
  t.same(one.notJudged.map((c: { workload: string }) => c.workload), ['Deployment/checkout', 'StatefulSet/db', 'Deployment/cert-manager'])
  const image = JSON.parse(run(['doctor', '--image', 'registry.example.com/shop/checkout', '--json'], { cwd }).stdout)
  t.equal(image.ok, true)
  const target = run(['doctor', '--target=runtime'], { cwd: `${fixtures}fa-target-stage` })
  t.match(target.stdout, /^Dockerfile:13 note: judged stage runtime, as --target asks$/m)
  const last = run(['doctor'], { cwd: `${fixtures}fa-target-stage` })
  t.equal(last.code, 1)
  t.match(last.stdout, /^Dockerfile:21 note: judged the last stage, ci, of 4: pass --target NAME if another one is shipped$/m)
  const helm = run(['doctor', '--k8s', 'k8s/deployment.yaml'], { cwd: `${fixtures}miss-helm-template` })
  t.match(helm.stdout, /render the chart first \(helm template RELEASE CHART -f values.yaml > rendered.yaml\)/)
  const notDockerfile = run(['doctor', '--dockerfile', 'k8s/notifier.yaml'], { cwd: `${fixtures}miss-manifest-command` })
  t.equal(notDockerfile.code, 2)
  t.equal(notDockerfile.stderr, 'fastify-graceful-k8s: k8s/notifier.yaml is not a Dockerfile: it has no FROM instruction (it reads as a Kubernetes manifest: pass it with --k8s)\n')
})

t.test('--help prints the usage and exits 0', async (t) => {
  for (const argv of [['--help'], ['doctor', '-h']]) {
    const { code, stdout } = run(argv)
    t.equal(code, 0)
    t.match(stdout, /^Usage: fastify-graceful-k8s doctor \[options\]/)
  }
})

t.test('bad usage: exit 2 with the reason and the usage', async (t) => {
  const cases: Array<[string[], string]> = [
    [[], 'missing command: doctor'],
    [['check'], 'unknown command "check": the only command is doctor'],
    [['doctor', '--fix'], 'unknown option "--fix"'],
    [['doctor', '--dockerfile'], '--dockerfile needs a value'],
    [['doctor', '--k8s='], '--k8s needs a value'],
    [['doctor', '--drain-delay', '5s'], '--drain-delay must be a whole number of milliseconds, got "5s"'],
    [['doctor', '--timeout', '-1'], '--timeout must be a whole number of milliseconds, got "-1"'],
    [['doctor', '--timeout', '--json'], '--timeout needs a value'],
    [['doctor', '--liveness-path', 'livez'], '--liveness-path must start with /, got "livez"']
  ]
  for (const [argv, message] of cases) {
    const { code, stdout, stderr } = run(argv)
    t.equal(code, 2, argv.join(' '))
    t.equal(stdout, '')
    t.equal(stderr.split('\n')[0], `fastify-graceful-k8s: ${message}`)
    t.match(stderr, 'Usage: fastify-graceful-k8s doctor')
  }
})

t.test('unreadable input: exit 2 with a message naming the path', async (t) => {
  const cases: Array<[string[], string, string?]> = [
    [['doctor'], `nothing to check: no Dockerfile and no k8s/ in ${fixtures}; pass --dockerfile PATH and/or --k8s DIR`, fixtures],
    [['doctor', '--k8s', 'missing'], 'cannot read missing: no such file or directory'],
    [['doctor', '--k8s', 'plugin'], 'no manifests in plugin: expected .yaml, .yml or .json files'],
    [['doctor', '--dockerfile', 'k8s'], 'cannot read k8s: it is a directory'],
    [['doctor', '--dockerfile', 'Dockerfile/inside'], 'cannot read Dockerfile/inside: ENOTDIR: not a directory, open \'' + repo + 'Dockerfile/inside\''],
    [['doctor', '--k8s', 'Dockerfile/inside'], 'cannot read Dockerfile/inside: ENOTDIR: not a directory, stat \'' + repo + 'Dockerfile/inside\'']
  ]
  for (const [argv, message, cwd] of cases) {
    const { code, stdout, stderr } = run(argv, { cwd })
    t.equal(code, 2, argv.join(' '))
    t.equal(stdout, '')
    t.equal(stderr, `fastify-graceful-k8s: ${message}\n`)
  }
})

t.test('a bug is not hidden as an input error', async (t) => {
  const io = { cwd: repo, env: {}, stdout: { write: () => { throw new Error('boom') } }, stderr: { write: () => true } }
  t.throws(() => main(['doctor'], io), { message: 'boom' })
})
