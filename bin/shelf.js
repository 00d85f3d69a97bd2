#!/usr/bin/env node
'use strict';
// Launcher for the `shelf` CLI: compiles the TypeScript sources on the fly with SWC
// (decorator metadata included, which NestJS needs), so there is no build step.
const path = require('node:path');
// fsync-heavy work (agent outboxes, many simulated devices) needs more than libuv's 4 threads.
process.env.UV_THREADPOOL_SIZE = process.env.UV_THREADPOOL_SIZE || '32';
process.env.SWC_NODE_PROJECT = process.env.SWC_NODE_PROJECT || path.join(__dirname, '..', 'tsconfig.json');
require('@swc-node/register');
require('../apps/cli/src/main.ts');
