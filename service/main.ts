// Placeholder entry point: replaced by the reference service (issue 3).
import Fastify from 'fastify'

const app = Fastify({ logger: true })
app.get('/', async () => ({ hello: 'world' }))
await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '0.0.0.0' })
