'use strict';
// Runs after `npm install` (root postinstall): builds the web console into apps/console/dist,
// which the hub serves at `/`. Skipped, with a note, when the console's build tools are not
// installed; the hub then serves the API only.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..');
const consoleDir = path.join(root, 'apps', 'console');
let vite;
try {
  vite = path.join(path.dirname(require.resolve('vite/package.json', { paths: [consoleDir] })), 'bin', 'vite.js');
} catch {
  console.error('build-console: vite is not installed; the hub will serve the API without the console');
  process.exit(0);
}
if (!fs.existsSync(path.join(consoleDir, 'index.html'))) process.exit(0);
const started = Date.now();
const r = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: consoleDir, stdio: 'inherit' });
if (r.status === 0) console.error(`build-console: apps/console/dist built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(r.status ?? 1);
