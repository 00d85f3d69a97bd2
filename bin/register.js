'use strict';
/**
 * Runs the TypeScript sources without a build step: a `require` hook for `.ts` files
 * that compiles with SWC (options in bin/swc-options.js) and keeps the output in an
 * on-disk cache keyed by the source's content, the compiler's version and the options.
 * A process whose sources are all cached never loads the compiler, which keeps a
 * device's agent about 70 MB smaller than compiling on the fly; an edited source is
 * simply a new key, so the cache can never serve stale code. Stack traces point into
 * the TypeScript (inline source maps).
 *
 * Use: `require('./bin/register')` before the first `.ts` module, or `node -r ./bin/register.js file.ts`.
 * `node bin/register.js --warm` compiles every source into the cache ahead of time
 * (run by `npm install`), so even a first start never loads the compiler, and removes
 * entries unused by the current sources for 30 days.
 * The cache lives in node_modules/.cache/shelfsight-ts (SHELF_COMPILE_CACHE overrides;
 * `off` compiles in memory only). A read-only or full disk only disables caching.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const options = require('./swc-options');

const root = path.resolve(__dirname, '..');
const setting = process.env.SHELF_COMPILE_CACHE;
const cacheDir = setting === 'off' ? undefined : setting || path.join(root, 'node_modules', '.cache', 'shelfsight-ts');
const salt = `${require('@swc/core/package.json').version}\0${JSON.stringify(options)}\0`;
/** Loaded on the first cache miss only. */
let swc;

/** Cache entries this process used (read or wrote). */
const used = new Set();

/** JavaScript for one TypeScript source: from the cache, or compiled (and cached). */
function compile(source, filename) {
  const key = crypto.createHash('sha256').update(salt).update(filename).update('\0').update(source).digest('hex');
  const cached = cacheDir && path.join(cacheDir, key.slice(0, 2), `${key}.js`);
  if (cached) used.add(cached);
  if (cached) {
    try {
      return fs.readFileSync(cached, 'utf8');
    } catch {
      // not cached yet
    }
  }
  swc ??= require('@swc/core');
  const { code } = swc.transformSync(source, { ...options, filename, sourceMaps: 'inline', swcrc: false, configFile: false });
  if (cached) {
    try {
      fs.mkdirSync(path.dirname(cached), { recursive: true });
      const tmp = `${cached}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
      fs.writeFileSync(tmp, code);
      fs.renameSync(tmp, cached);
    } catch {
      // caching is an optimisation; a read-only or full disk must not stop the program
    }
  }
  return code;
}

if (!require.extensions['.ts']) {
  require.extensions['.ts'] = (module, filename) => {
    module._compile(compile(fs.readFileSync(filename, 'utf8'), filename), filename);
  };
  process.setSourceMapsEnabled(true);
}

/** Compile every non-test source under apps/, libs/ and scripts/ into the cache. */
function warm() {
  let files = 0;
  const visit = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') visit(full);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') && !entry.name.endsWith('.d.ts')) {
        compile(fs.readFileSync(full, 'utf8'), full);
        files++;
      }
    }
  };
  for (const dir of ['apps', 'libs', 'scripts']) if (fs.existsSync(path.join(root, dir))) visit(path.join(root, dir));
  return files;
}

/**
 * Delete cache entries older than `maxAgeDays` that this process did not use (sources
 * since edited or removed). Only files named like entries are touched; an entry still
 * needed by some other file (a test helper, say) is simply compiled again on its next use.
 */
function prune(maxAgeDays) {
  if (!cacheDir || !fs.existsSync(cacheDir)) return 0;
  const cutoff = Date.now() - maxAgeDays * 86_400_000;
  let removed = 0;
  for (const sub of fs.readdirSync(cacheDir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of fs.readdirSync(path.join(cacheDir, sub))) {
      const file = path.join(cacheDir, sub, name);
      if (!/^[0-9a-f]{64}\.js$/.test(name) || used.has(file)) continue;
      try {
        if (fs.statSync(file).mtimeMs < cutoff) {
          fs.rmSync(file);
          removed++;
        }
      } catch {
        // gone already
      }
    }
  }
  return removed;
}

if (require.main === module && process.argv.includes('--warm')) {
  const started = Date.now();
  const files = warm();
  const removed = prune(30);
  process.stdout.write(`compiled ${files} TypeScript sources into the cache in ${Date.now() - started} ms; removed ${removed} stale entries\n`);
}
