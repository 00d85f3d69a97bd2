import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type DynamicModule, Logger, Module } from '@nestjs/common';
import { ServeStaticModule } from '@nestjs/serve-static';

/**
 * Where `npm install` builds the console (apps/console/dist, see scripts/build-console.js);
 * undefined when it has not been built (the API works without it).
 */
export function consoleDistDir(): string | undefined {
  let root: string;
  try {
    root = dirname(require.resolve('@shelfsight/console/package.json'));
  } catch {
    return undefined;
  }
  const dist = join(root, 'dist');
  return existsSync(join(dist, 'index.html')) ? dist : undefined;
}

/**
 * The web console at `/`: index.html for `/` only, its hashed assets under `/assets/`. The
 * page routes with the URL hash (`/#/inventory`), so no console path can shadow an API path,
 * and an unknown path still gets the API's 404. Static files are not Nest routes: they need
 * no key (the page asks for one), and the route-rule check does not see them.
 */
@Module({})
export class ConsoleStaticModule {
  static forRoot(dist = consoleDistDir()): DynamicModule {
    if (!dist) {
      new Logger('Console').warn('the web console is not built (apps/console/dist is missing; `npm install` builds it): serving the API only');
      return { module: ConsoleStaticModule };
    }
    return {
      module: ConsoleStaticModule,
      imports: [
        ServeStaticModule.forRoot({
          rootPath: dist,
          renderPath: '/',
          serveStaticOptions: {
            index: false,
            fallthrough: true,
            setHeaders: (res, path) => {
              // Vite names assets by content hash: cache them for good, never the page itself.
              res.setHeader('Cache-Control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
            },
          },
        }),
      ],
    };
  }
}
