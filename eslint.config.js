// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const importX = require('eslint-plugin-import-x');

const APPS = ['agent', 'cli', 'hub'];
const LIBS = ['common', 'contracts', 'db', 'vision'];

/**
 * The dependency direction, checked on resolved paths (relative imports and
 * `@shelfsight/*` aliases alike): apps → libs, never back; a package reaches another only
 * through its entry (`@shelfsight/<name>`, i.e. `src/index.ts`), never its internals — the
 * CLI starts the hub and the agent through `@shelfsight/hub` and `@shelfsight/agent`.
 * test/ and scripts/ follow the same rule.
 */
const zones = [
  { target: './libs', from: './apps', message: 'libs never import apps (apps → libs only).' },
  ...[...APPS.map((a) => `apps/${a}`), ...LIBS.map((l) => `libs/${l}`)].flatMap((pkg) => [
    ...APPS.filter((a) => `apps/${a}` !== pkg).map((a) => ({
      target: `./${pkg}`,
      from: `./apps/${a}`,
      except: ['./src/index.ts'],
      message: `import @shelfsight/${a} (its src/index.ts), not its internals.`,
    })),
    ...LIBS.filter((l) => `libs/${l}` !== pkg).map((l) => ({
      target: `./${pkg}`,
      from: `./libs/${l}`,
      except: ['./src/index.ts'],
      message: `import @shelfsight/${l} (its src/index.ts), not its internals.`,
    })),
  ]),
  ...['test', 'scripts'].flatMap((dir) => [
    { target: `./${dir}`, from: './apps', except: APPS.map((a) => `./${a}/src/index.ts`), message: 'import an app through @shelfsight/<app>, not its internals.' },
    // Tests may also use a lib's test fixtures (src/testing: generated images, stand-in backbones), which are not part of its API.
    {
      target: `./${dir}`,
      from: './libs',
      except: LIBS.flatMap((l) => [`./${l}/src/index.ts`, ...(dir === 'test' ? [`./${l}/src/testing`] : [])]),
      message: 'import a lib through @shelfsight/<lib>, not its internals.',
    },
  ]),
];

module.exports = tseslint.config(
  { ignores: ['node_modules/', '**/generated/**', 'apps/console/dist/', 'apps/console/src/api/openapi.d.ts', 'coverage/', '.data/', '.tmp/', 'jest.config.js', 'test/browser/jest.config.js', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.js', '.json', '.node'] })],
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones }],
      // No import cycles inside our own code. import-x skips type-only imports; test/import-cycles.spec.ts counts them too.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    files: ['bin/*.js', 'scripts/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', console: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
