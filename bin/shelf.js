#!/usr/bin/env node
'use strict';
// Launcher for the `shelf` CLI: runs the TypeScript sources through bin/register.js
// (SWC with a content-keyed compile cache), so there is no build step. It calls the CLI's
// exported `main` instead of letting the module guess from argv[1] whether it is the
// program: npm installs this file as a symlink named `shelf` (npm link, npx,
// node_modules/.bin/shelf), and Node resolves the symlink, so the path is no clue.
// fsync-heavy work (agent outboxes, many simulated devices) needs more than libuv's 4 threads.
process.env.UV_THREADPOOL_SIZE = process.env.UV_THREADPOOL_SIZE || '32';
require('./register');
void require('../apps/cli/src/main.ts').main(process.argv);
