#!/usr/bin/env node
// The doctor package's own command: `npx fastify-graceful-k8s-doctor [options]`, the `doctor` command implied
// (`npx fastify-graceful-k8s-doctor doctor [options]` works too). The package's other bin, cli.ts, is the
// `fastify-graceful-k8s doctor [options]` of earlier versions.
import { main } from './main.js'

const argv = process.argv.slice(2)
process.exitCode = main(argv[0] === 'doctor' ? argv : ['doctor', ...argv], { cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr })
