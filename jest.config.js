/** @type {import('jest').Config} */
// Three projects, so a contributor can run the fast ones alone:
//   unit         specs under apps/ and libs/ that start nothing (no broker, database, hub or child process)
//   integration  test/*.spec.ts, and the specs under apps/ and libs/ that start a broker, a hub,
//                a database or a process (recognised by what they use, SERVICE_USE below)
//   e2e          test/*.e2e.spec.ts
// `npm test` runs all three; `npm run test:unit` the unit project only.
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

// The same compiler options as the `shelf` launcher (bin/register.js).
const swc = ['@swc/jest', require('./bin/swc-options')];
const moduleNameMapper = {
  '^@shelfsight/(contracts|common|vision|db)$': '<rootDir>/libs/$1/src/index.ts',
  '^@shelfsight/(hub|agent|cli)$': '<rootDir>/apps/$1/src/index.ts',
};
const shared = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper,
  testPathIgnorePatterns: ['/node_modules/', '/generated/'],
  // StrykerJS's sandbox (a copy of the tree, see stryker.conf.json): never a second copy of every module and spec.
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp/'],
  testTimeout: 60000,
};

/** What makes a spec in the sources an integration test: an MQTT broker, a (fake) hub, a database or a child process. */
const SERVICE_USE = /\b(TestBroker|FakeHub|startRolloutRig|startHub|createTestDatabase|startEmbeddedPostgres)\b|['"]node:child_process['"]/;
/** `apps/agent/src/agent.spec.ts`, … (paths relative to the repository). */
const sourceSpecs = ['apps', 'libs'].flatMap((top) =>
  readdirSync(join(__dirname, top), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => {
      const src = join(top, d.name, 'src');
      try {
        return readdirSync(join(__dirname, src), { recursive: true }).map((f) => join(src, String(f)));
      } catch {
        return [];
      }
    })
    .filter((f) => f.endsWith('.spec.ts') && !f.includes('node_modules')),
);
const integrationInSources = sourceSpecs.filter((f) => SERVICE_USE.test(readFileSync(join(__dirname, f), 'utf8')));
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

module.exports = {
  testTimeout: 60000,
  // Tests that spawn processes, brokers and databases share two cores: keep it calm.
  maxWorkers: 2,
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts'],
      testPathIgnorePatterns: [...shared.testPathIgnorePatterns, ...integrationInSources.map((f) => `^${escape(join(__dirname, f))}$`)],
    },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/**/*.spec.ts', ...integrationInSources.map((f) => `<rootDir>/${f}`)],
      testPathIgnorePatterns: [...shared.testPathIgnorePatterns, '\\.e2e\\.spec\\.ts$'],
      globalSetup: '<rootDir>/test/global-setup.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/mqtt-leak-guard.ts'],
    },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e.spec.ts'],
      globalSetup: '<rootDir>/test/global-setup.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/mqtt-leak-guard.ts'],
    },
  ],
};
