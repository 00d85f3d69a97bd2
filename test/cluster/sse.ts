/** One server-sent event as the observer received it. */
export interface ReceivedEvent {
  name: string;
  data: unknown;
  at: number;
}

/**
 * A console-like client of `GET /events` (fetch with the API key: EventSource cannot send
 * headers) that keeps every event it receives until `close()`. `connected` resolves once
 * the stream's headers arrived.
 */
export class SseObserver {
  readonly events: ReceivedEvent[] = [];
  private readonly abort = new AbortController();
  readonly connected: Promise<void>;
  /** Set when the stream ended or failed before `close()`. */
  ended: string | undefined;

  constructor(url: string, apiKey: string) {
    this.connected = this.run(url, apiKey);
    this.connected.catch(() => undefined);
  }

  private async run(url: string, apiKey: string): Promise<void> {
    const res = await fetch(url, { headers: { 'X-API-Key': apiKey, Accept: 'text/event-stream' }, signal: this.abort.signal });
    if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
    void this.read(res.body);
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length === 0) continue;
          let parsed: unknown = data.join('\n');
          try {
            parsed = JSON.parse(parsed as string);
          } catch {
            // not JSON: kept as text
          }
          this.events.push({ name, data: parsed, at: Date.now() });
        }
      }
      if (!this.abort.signal.aborted) this.ended = 'the stream ended';
    } catch (err) {
      if (!this.abort.signal.aborted) this.ended = (err as Error).message;
    }
  }

  /** Whether an event named `name` whose data has `id` equal to `id` arrived at or after `since`. */
  saw(name: string, id: string | number, since = 0): boolean {
    return this.events.some((e) => e.name === name && e.at >= since && String((e.data as { id?: unknown } | null)?.id) === String(id));
  }

  close(): void {
    this.abort.abort();
  }
}
