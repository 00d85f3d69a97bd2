/* global require, module */
/** @type {import('jest').Config} */
// The Jest config StrykerJS runs mutants against (stryker.conf.json): the `unit` project of
// jest.config.js, narrowed to the hub services' unit specs (no database, broker or TensorFlow).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const base = require('./jest.config');

const unit = Object.fromEntries(Object.entries(base.projects.find((p) => p.displayName === 'unit')).filter(([k]) => k !== 'displayName'));
module.exports = { ...unit, testMatch: ['<rootDir>/apps/hub/src/**/*.service.spec.ts'], testTimeout: 20000 };
