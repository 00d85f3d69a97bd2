'use strict';
// Runs after `npm install`: generates the Prisma client (pure TypeScript, no native
// query engine). `prisma generate` insists on finding a schema engine binary although
// generation does not use it; point it at any existing file so that it works offline.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..');
const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
const cli = path.join(root, 'node_modules', 'prisma', 'build', 'index.js');
if (!fs.existsSync(cli)) {
  console.error('prisma-generate: prisma CLI not installed; skipping');
  process.exit(0);
}
const r = spawnSync(process.execPath, [cli, 'generate', '--schema', path.join(root, 'prisma', 'schema.prisma')], {
  cwd: root,
  env,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
