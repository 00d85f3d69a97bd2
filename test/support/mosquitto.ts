import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@shelfsight/cli';
import { portOpen } from './services';

export interface PrivateMosquitto {
  url: string;
  stop(): Promise<void>;
}

/**
 * A Mosquitto of the suite's own (the machine's `mosquitto` binary, the one `.ci/run`
 * starts on 1883) on a free port: anonymous, no persistence. A harness that counts what
 * was acknowledged uses it so that no other hub on the shared broker (another test, a
 * teammate's run) subscribes to its devices' topics and acknowledges their detections.
 */
export async function startPrivateMosquitto(dir: string): Promise<PrivateMosquitto> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 100000',
      // Run as root (CI), mosquitto would switch to its own user, who cannot read the temp dir.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
    ].join('\n') + '\n',
  );
  const broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  broker.once('error', () => undefined); // not installed: reported by the wait below
  const exited = new Promise<void>((resolve) => broker.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  while (!(await portOpen('127.0.0.1', port))) {
    if (Date.now() > deadline || broker.exitCode !== null) throw new Error('mosquitto did not start (is the mosquitto package installed?)');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      if (broker.exitCode === null) broker.kill('SIGTERM');
      await exited;
    },
  };
}
