/** @type {import('jest').Config} */
// `npm run test:browser`: the console in headless Chromium against a real hub and real agents.
const { join } = require('node:path');
const root = join(__dirname, '..', '..');
const base = require(join(root, 'jest.config.js'));
const integration = base.projects.find((p) => p.displayName === 'integration');

module.exports = {
  ...integration,
  displayName: 'browser',
  rootDir: root,
  testMatch: ['<rootDir>/test/browser/**/*.browser.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 240000,
  maxWorkers: 1,
};
