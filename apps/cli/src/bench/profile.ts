import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';

/**
 * A CPU profile of this process's main thread over a benchmark's timed window only (not its
 * set-up), for `--profile <file>`: open the file in Chrome DevTools (Performance) or speedscope.
 */
export class WindowProfile {
  private session?: Session;

  constructor(private readonly file: string | undefined) {}

  async start(): Promise<void> {
    if (!this.file) return;
    this.session = new Session();
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.start');
  }

  /** Stop and write the profile; where it went, or undefined when not profiling. */
  async stop(): Promise<string | undefined> {
    if (!this.session || !this.file) return undefined;
    const { profile } = await this.session.post('Profiler.stop');
    this.session.disconnect();
    this.session = undefined;
    await writeFile(this.file, JSON.stringify(profile));
    return this.file;
  }
}
