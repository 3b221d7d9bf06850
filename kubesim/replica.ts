// One replica of the service, as a container of the image or as a local process, behind one interface so
// the driver (and the benchmarks) can run the same rollout either way.
//
// Replicas run inside the scenario's network namespace (netns.ts), each on a port of its own at the pod
// address: local processes through `ip netns exec` (which execs, so the PID is node's), containers with
// `--network container:<holder>`, the holder being a sleeping container whose network namespace the suite
// names and wires. No Docker bridge and no docker-proxy in the path, so a refused or reset connection is
// seen as such. Node still runs as PID 1 of the container's PID namespace, which is what the signal
// behaviour depends on. Without a network (the image checks), a replica listens on the host's 127.0.0.1.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { constants } from 'node:os'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { PreStop, Security } from './manifest.js'
import { createNetwork, type Network } from './netns.js'
import { onCleanup } from './cleanup.js'

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
export const DOCKER = process.env.DOCKER ?? (existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker')

export type LogLine = Record<string, unknown> & { msg?: string }

export interface ReplicaExit {
  /** The exit status as a container runtime reports it: 128 + signal number when a signal ended it. */
  code: number
  /** performance.now() when the exit was observed. */
  at: number
}

export interface HookResult { ok: boolean, detail: string }

export interface Replica {
  readonly name: string
  /** The container's id (containers only). */
  readonly id?: string
  /** The address and port it listens on (the pod address in the scenario's network). */
  readonly host: string
  readonly port: number
  readonly exited: Promise<ReplicaExit>
  /** Runs a preStop hook the way the kubelet would; resolves when the hook has returned. */
  preStop: (hook: PreStop) => Promise<HookResult>
  signal: (sig: 'SIGTERM' | 'SIGKILL') => Promise<void>
  /** Every line it printed on stdout, parsed as JSON where possible. */
  logs: () => Promise<LogLine[]>
  /** Kills it if still running and frees what it holds (the container). */
  remove: () => Promise<void>
}

export interface Runtime {
  readonly kind: 'container' | 'process'
  /** The scenario's network namespace, made so that this runtime's replicas can join it. */
  createNetwork: () => Promise<Network>
  start: (name: string, env: Record<string, string>, net?: Network) => Promise<Replica>
}

const handedOut = new Set<number>()

/** A port free on the host and not handed out before by this process (so also free in a fresh namespace). */
export async function freePort (): Promise<number> {
  for (;;) {
    const port = await anyPort()
    if (handedOut.has(port)) continue
    handedOut.add(port)
    return port
  }
}

async function anyPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise(resolve => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export function run (cmd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr: stderr + (err !== null && typeof err.code !== 'number' ? String(err.message) : '') })
    })
  })
}

const parseLines = (text: string): LogLine[] => text.split('\n').filter(l => l.trim() !== '').map(l => {
  try {
    const v = JSON.parse(l) as unknown
    return typeof v === 'object' && v !== null ? v as LogLine : { msg: l }
  } catch {
    return { msg: l }
  }
})

async function httpHook (host: string, port: number, path: string): Promise<HookResult> {
  try {
    const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(10_000) })
    await res.arrayBuffer()
    return { ok: res.status < 400, detail: `httpGet ${path} → ${res.status}` }
  } catch (err) {
    return { ok: false, detail: `httpGet ${path} failed: ${(err as Error).message}` }
  }
}

/** Containers this process created and has not removed yet. */
const created = new Set<string>()

/**
 * Removes them at once, synchronously: for a test process ended by a signal (tap's timeout, Ctrl-C),
 * which would otherwise leave its containers behind.
 */
export function removeContainersSync (): void {
  if (created.size > 0) spawnSync(DOCKER, ['rm', '-f', ...created], { stdio: 'ignore', timeout: 60_000 })
  created.clear()
}
onCleanup('containers', removeContainersSync)

export interface ContainerOptions {
  image: string
  security?: Security
  /** Container names are `${prefix}-${name}`. */
  prefix?: string
}

/** Replicas as containers of `image`, started with the manifest's securityContext where docker has a flag for it. */
export function containerRuntime (opts: ContainerOptions): Runtime {
  const prefix = opts.prefix ?? `fgk-e2e-${process.pid}`
  const securityArgs = (s: Security | undefined): string[] => {
    if (s === undefined) return []
    const args: string[] = []
    if (s.runAsUser !== undefined) args.push('--user', `${s.runAsUser}${s.runAsGroup === undefined ? '' : `:${s.runAsGroup}`}`)
    if (s.readOnlyRootFilesystem) args.push('--read-only')
    if (!s.allowPrivilegeEscalation) args.push('--security-opt', 'no-new-privileges')
    if (s.dropAllCapabilities) args.push('--cap-drop', 'ALL')
    for (const dir of s.emptyDirs) args.push('--tmpfs', `${dir}:rw,size=64m,mode=1777`)
    return args
  }
  let holders = 0
  return {
    kind: 'container',
    async createNetwork () {
      // The holder of the pods' network namespace, as a pod sandbox's pause container holds it.
      const holder = `${prefix}-netns-${holders++}`
      const res = await run(DOCKER, ['run', '-d', '--name', holder, '--network', 'none', '--label', 'fastify-graceful-k8s.e2e=1',
        '--entrypoint', 'sleep', opts.image, 'infinity'])
      if (res.code !== 0) throw new Error(`docker run ${holder} (the network namespace's holder) failed: ${res.stderr.trim()}`)
      const id = res.stdout.trim()
      created.add(id)
      const pid = Number((await run(DOCKER, ['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim())
      let net: Network
      try {
        net = createNetwork({ joinPid: pid })
      } catch (err) {
        await run(DOCKER, ['rm', '-f', id])
        created.delete(id)
        throw err
      }
      return {
        ...net,
        holder: id,
        destroy () {
          net.destroy()
          spawnSync(DOCKER, ['rm', '-f', id], { stdio: 'ignore', timeout: 60_000 })
          created.delete(id)
        }
      }
    },
    async start (name, env, net) {
      const port = await freePort()
      const fullName = `${prefix}-${name}`
      const holder = (net as (Network & { holder?: string }) | undefined)?.holder
      const host = net === undefined ? '127.0.0.1' : net.podIp
      const envArgs = Object.entries({ ...env, PORT: String(port), HOST: net === undefined ? '127.0.0.1' : '0.0.0.0' }).flatMap(([k, v]) => ['-e', `${k}=${v}`])
      const res = await run(DOCKER, ['run', '-d', '--name', fullName, '--network', holder === undefined ? 'host' : `container:${holder}`, '--label', 'fastify-graceful-k8s.e2e=1',
        ...securityArgs(opts.security), ...envArgs, opts.image])
      if (res.code !== 0) throw new Error(`docker run ${fullName} failed: ${res.stderr.trim()}`)
      const id = res.stdout.trim()
      created.add(id)
      // `docker wait` prints the exit status when the container stops: 137 after SIGKILL.
      const exited = run(DOCKER, ['wait', id], 24 * 3600_000).then(r => ({ code: r.code === 0 ? Number(r.stdout.trim()) : -1, at: performance.now() }))
      return {
        name,
        id,
        host,
        port,
        exited,
        async preStop (hook) {
          if (hook.kind === 'exec') {
            const r = await run(DOCKER, ['exec', id, ...hook.command], 600_000)
            return { ok: r.code === 0, detail: `exec ${JSON.stringify(hook.command)} → ${r.code}${r.stderr.trim() === '' ? '' : `: ${r.stderr.trim()}`}` }
          }
          if (hook.kind === 'sleep') { await sleep(hook.seconds * 1000); return { ok: true, detail: `sleep ${hook.seconds}` } }
          if (hook.kind === 'httpGet') return await httpHook(host, port, hook.path)
          return { ok: true, detail: 'no preStop hook' }
        },
        async signal (sig) {
          await run(DOCKER, ['kill', '--signal', sig.replace(/^SIG/, ''), id])
        },
        async logs () {
          const r = await run(DOCKER, ['logs', id])
          return parseLines(r.stdout)
        },
        async remove () {
          await run(DOCKER, ['rm', '-f', id])
          created.delete(id)
        }
      }
    }
  }
}

/**
 * The signal a preStop exec hook sends to PID 1, for replicas that are local processes (no PID 1, no
 * `docker exec`): `kill -HUP 1`, `sh -c "kill -s HUP 1"`, `node -e "process.kill(1, 'SIGHUP')"`.
 */
export function preStopSignal (command: readonly string[]): NodeJS.Signals | undefined {
  const text = command.join(' ')
  const m = /\bkill\s+(?:-s\s+|-)(?:SIG)?([A-Z]+[0-9]*)\s+(?:--\s+)?1\b/.exec(text) ??
    /process\.kill\(\s*1\s*,\s*['"](?:SIG)?([A-Z]+[0-9]*)['"]\s*\)/.exec(text)
  return m === null ? undefined : `SIG${m[1] ?? ''}` as NodeJS.Signals
}

export interface ProcessOptions {
  /** The service entry, relative to `cwd`: the Dockerfile's CMD. */
  entry?: string
  cwd?: string
}

/** Replicas as local `node dist/service/main.js` processes, the Dockerfile's CMD run from the repository root. */
export function processRuntime (opts: ProcessOptions = {}): Runtime {
  const entry = opts.entry ?? 'dist/service/main.js'
  const cwd = opts.cwd ?? REPO_ROOT
  return {
    kind: 'process',
    async createNetwork () { return createNetwork() },
    async start (name, env, net) {
      const port = await freePort()
      const host = net === undefined ? '127.0.0.1' : net.podIp
      // A clean environment, as in a container. `env -i` because a test runner may hook spawn() to add its
      // loaders and coverage variables (tap's processinfo does); env then execs node, keeping the PID, as
      // `ip netns exec` execs env.
      const childEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, PORT: String(port), HOST: net === undefined ? '127.0.0.1' : '0.0.0.0' }
      const argv = [...(net?.exec ?? []), '/usr/bin/env', '-i', ...Object.entries(childEnv).map(([k, v]) => `${k}=${v}`), process.execPath, entry]
      const child: ChildProcess = spawn(argv[0] as string, argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
      const undo = onCleanup(`replica ${name}`, () => { child.kill('SIGKILL') })
      const lines: LogLine[] = []
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', l => lines.push(...parseLines(l)))
      child.stderr?.resume()
      const exited = new Promise<ReplicaExit>(resolve => {
        child.on('exit', (code, signal) => {
          const n = signal === null ? (code ?? -1) : 128 + (constants.signals[signal] ?? 0)
          resolve({ code: n, at: performance.now() })
        })
      })
      // 'close' comes after the last stdout line; 'exit' may come before it.
      const closed = new Promise<void>(resolve => child.on('close', () => resolve()))
      let running = true
      exited.then(() => { running = false; undo() })
      return {
        name,
        host,
        port,
        exited,
        async preStop (hook) {
          if (hook.kind === 'exec') {
            const sig = preStopSignal(hook.command)
            if (sig === undefined) return { ok: false, detail: `cannot run ${JSON.stringify(hook.command)} for a local process` }
            if (running) child.kill(sig)
            return { ok: running, detail: `${JSON.stringify(hook.command)} as ${sig} to pid ${child.pid ?? '?'}` }
          }
          if (hook.kind === 'sleep') { await sleep(hook.seconds * 1000); return { ok: true, detail: `sleep ${hook.seconds}` } }
          if (hook.kind === 'httpGet') return await httpHook(host, port, hook.path)
          return { ok: true, detail: 'no preStop hook' }
        },
        async signal (sig) { if (running) child.kill(sig) },
        async logs () {
          if (!running) await Promise.race([closed, sleep(2000)])
          return lines
        },
        async remove () {
          if (running) child.kill('SIGKILL')
          await exited
        }
      }
    }
  }
}
