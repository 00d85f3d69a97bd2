/** @type {import('jest').Config} */
// The same compiler options as the `shelf` launcher (bin/register.js).
const swc = ['@swc/jest', require('./bin/swc-options')];
const moduleNameMapper = {
  '^@shelfsight/(contracts|common|vision|db)$': '<rootDir>/libs/$1/src/index.ts',
  '^@shelfsight/(hub|agent|cli)$': '<rootDir>/apps/$1/src/index.ts',
};
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper,
  testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/generated/'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  testTimeout: 60000,
  // Tests that spawn processes, brokers and databases share two cores: keep it calm.
  maxWorkers: 2,
};
