import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { ConfigError, packageVersion } from '@shelfsight/common';
import { commandsFor } from './commands';

/**
 * `shelf`: the one command line of ShelfSight. Each sub-command lives in its own file
 * under ./commands and registers itself on the program.
 */
export function buildProgram(args: string[] = []): Command {
  const program = new Command('shelf')
    .description('ShelfSight: edge shelf classification, inventory hub and fleet retraining')
    .version(packageVersion(), '-V, --version', 'print the version of shelf')
    .showHelpAfterError()
    .exitOverride();
  for (const register of commandsFor(args)) register(program);
  return program;
}

/**
 * Run the CLI on `argv` (`process.argv`: node, script, args…) and set `process.exitCode`.
 * bin/shelf.js calls it, whatever name the bin was linked under (`shelf`, `shelf.js`).
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram(argv.slice(2));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`shelf: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    // Expected failures (a domain error with a stable code, a refused connection, a failed
    // migration) are one line for the operator; anything else keeps its stack.
    const expected =
      err instanceof Error && !process.env.DEBUG && (typeof (err as { code?: unknown }).code === 'string' || err.name === 'MigrationError');
    process.stderr.write(`shelf: ${err instanceof Error ? (expected ? `${err.name}: ${err.message}` : (err.stack ?? err.message)) : String(err)}\n`);
    process.exitCode = 1;
  }
}

// `node -r ./bin/register.js apps/cli/src/main.ts …` works too.
if (require.main === module) void main(process.argv);
