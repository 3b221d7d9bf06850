// Loads NestJS under tap's TypeScript loader. That loader's ESM resolver (a ts-node fork) maps
// '@nestjs/common/pipes/validation.pipe.js' through the package's "./*" export pattern instead of "./*.js"
// and looks for 'validation.pipe.js.js'. A resolve hook registered after it runs first and resolves
// '@nestjs/...' specifiers with Node's own resolver; Nest is imported only once the hook is in place.
import { register } from 'node:module'

const hook = `
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
export async function resolve (specifier, context, next) {
  if (specifier.startsWith('@nestjs/') && context.parentURL !== undefined) {
    return { url: pathToFileURL(createRequire(context.parentURL).resolve(specifier)).href, shortCircuit: true }
  }
  return next(specifier, context)
}`

export async function loadNest () {
  register(`data:text/javascript,${encodeURIComponent(hook)}`)
  await import('reflect-metadata')
  const [common, core, fastify] = await Promise.all([import('@nestjs/common'), import('@nestjs/core'), import('@nestjs/platform-fastify')])
  return { ...common, ...core, ...fastify }
}
