// Loads NestJS under tap's TypeScript loader. That loader's ESM resolver (a ts-node fork) maps
// '@nestjs/common/pipes/validation.pipe.js' through the package's "./*" export pattern instead of "./*.js"
// and looks for 'validation.pipe.js.js'. A resolve hook registered after it runs first and resolves
// '@nestjs/...' specifiers with Node's own resolver; Nest is imported only once the hook is in place.
import { createRequire, register } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const hook = `
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
export async function resolve (specifier, context, next) {
  if (specifier.startsWith('@nestjs/') && context.parentURL !== undefined) {
    return { url: pathToFileURL(createRequire(context.parentURL).resolve(specifier)).href, shortCircuit: true }
  }
  return next(specifier, context)
}`

/**
 * The repository's Nest, or with NEST_MODULES set the one installed in that folder (test/nest.test.ts installs
 * Nest 11 there): its own packages import each other through the hook, from where they are.
 */
export async function loadNest () {
  register(`data:text/javascript,${encodeURIComponent(hook)}`)
  const dir = process.env.NEST_MODULES
  if (dir === undefined) {
    await import('reflect-metadata')
    const [common, core, fastify] = await Promise.all([import('@nestjs/common'), import('@nestjs/core'), import('@nestjs/platform-fastify')])
    return { ...common, ...core, ...fastify }
  }
  const require = createRequire(join(dir, 'package.json'))
  const load = async (name: string): Promise<Record<string, unknown>> => await import(pathToFileURL(require.resolve(name)).href) as Record<string, unknown>
  await load('reflect-metadata')
  const [common, core, fastify] = await Promise.all([load('@nestjs/common'), load('@nestjs/core'), load('@nestjs/platform-fastify')])
  return { ...common, ...core, ...fastify } as unknown as typeof import('@nestjs/common') & typeof import('@nestjs/core') & typeof import('@nestjs/platform-fastify')
}
