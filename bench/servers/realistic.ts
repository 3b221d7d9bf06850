// A route closer to real work than the hello route, for the instruction-count item: the logger on (pino,
// info, to stdout: a line at each request and each response), a JSON body validated against a schema and
// a response serialised from one. VARIANT: bare or graceful (the plugin with its defaults).
import Fastify from 'fastify'
import graceful from '../../plugin/index.js'

const variant = process.env.VARIANT ?? 'bare'
const app = Fastify({ logger: { level: 'info' } })
if (variant === 'graceful') await app.register(graceful, { drainDelay: 5000, timeout: 30_000 })
else if (variant !== 'bare') throw new Error(`VARIANT must be bare or graceful, got ${JSON.stringify(variant)}`)

let nextId = 1
app.post('/orders', {
  schema: {
    body: {
      type: 'object',
      required: ['sku', 'quantity', 'customer'],
      additionalProperties: false,
      properties: {
        sku: { type: 'string', pattern: '^[A-Z]{3}-\\d{4}$' },
        quantity: { type: 'integer', minimum: 1, maximum: 100 },
        customer: {
          type: 'object',
          required: ['id', 'email'],
          properties: { id: { type: 'integer' }, email: { type: 'string', maxLength: 200 } }
        },
        note: { type: 'string', maxLength: 500 }
      }
    },
    response: {
      201: {
        type: 'object',
        properties: { id: { type: 'integer' }, sku: { type: 'string' }, quantity: { type: 'integer' }, status: { type: 'string' } }
      }
    }
  }
}, async (request, reply) => {
  const body = request.body as { sku: string, quantity: number }
  return await reply.code(201).send({ id: nextId++, sku: body.sku, quantity: body.quantity, status: 'accepted' })
})

await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
