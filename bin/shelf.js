#!/usr/bin/env node
'use strict';
// Launcher for the `shelf` CLI: runs the TypeScript sources through bin/register.js
// (SWC with a content-keyed compile cache), so there is no build step.
// fsync-heavy work (agent outboxes, many simulated devices) needs more than libuv's 4 threads.
process.env.UV_THREADPOOL_SIZE = process.env.UV_THREADPOOL_SIZE || '32';
require('./register');
require('../apps/cli/src/main.ts');
