'use strict';
/**
 * How TypeScript sources are compiled, for the `shelf` launcher (bin/register.js) and
 * for Jest (@swc/jest): CommonJS, ES2022, legacy decorators with the design-type
 * metadata NestJS's dependency injection reads, class fields assigned in the
 * constructor (TypeScript's `useDefineForClassFields: false`).
 */
module.exports = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'commonjs' },
};
