import Fastify, { type FastifyInstance } from 'fastify'
import { expectAssignable, expectError, expectType } from 'tsd'
import graceful, {
  GracefulError,
  type GracefulErrorCode,
  graceful as named,
  type GracefulController,
  type GracefulOptions,
  type GracefulState,
  type ShutdownResult,
  type TaskDone,
  type TaskInfo
} from 'fastify-graceful-k8s'

const app = Fastify()
app.register(graceful)
app.register(named, { drainDelay: 5000, timeout: 30000, signals: ['SIGHUP', 'SIGTERM'] })
app.register(graceful, {
  readinessChecks: [{ name: 'db', check: async (signal: AbortSignal) => signal.aborted, timeout: 500 }]
})
expectError(app.register(graceful, { drainDelay: '5s' }))
expectError(app.register(graceful, { signals: ['SIGKILL'] }))
expectError(app.register(graceful, { drainDelayMs: 5 }))
expectAssignable<GracefulOptions>({ handleSignals: false, exit: false })

expectType<GracefulController>(app.graceful)
expectType<GracefulState>(app.graceful.state)
expectType<AbortSignal>(app.graceful.shutdownSignal)
expectType<AbortSignal>(app.graceful.deadlineSignal)
expectType<Promise<ShutdownResult>>(app.graceful.shutdown())
expectType<TaskDone>(app.graceful.task('consumer'))
expectType<Promise<number>>(app.graceful.runTask('compute', async () => 42))
expectType<TaskInfo[]>(app.graceful.pending())
expectError(app.graceful.task())

app.post('/jobs', async (request, reply) => {
  const done = request.task('send-email')
  expectType<void>(done())
  expectType<Promise<string>>(request.runTask('render', async (signal) => {
    expectType<AbortSignal>(signal)
    return 'ok'
  }))
  return reply.code(202).send()
})

const err = new GracefulError('FST_GRACEFUL_TASK_REFUSED', 'x')
expectType<GracefulErrorCode>(err.code)
expectError(new GracefulError('NOT_A_CODE', 'x'))

function takesInstance (instance: FastifyInstance): ShutdownResult['exitCode'] {
  return instance.graceful.config.timeout
}
expectType<number>(takesInstance(app))
