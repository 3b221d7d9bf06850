#!/usr/bin/env node
// The package's bin: `npx fastify-graceful-k8s doctor`. It loads only the doctor, never the plugin.
import { main } from './main.js'

process.exitCode = main(process.argv.slice(2), { cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr })
