/** What stands in for a redacted secret. */
export const REDACTED = '***';

/**
 * A URL fit to log or show: its password (and any query parameter that looks like a
 * credential) replaced by `***`. Works on strings that are not valid URLs too (a rejected
 * setting): anything between `//` and `@` that has a colon loses the part after it.
 */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = REDACTED;
    for (const key of [...url.searchParams.keys()]) {
      if (/pass|secret|token|key|auth/i.test(key)) url.searchParams.set(key, REDACTED);
    }
    return url.toString();
  } catch {
    // Not a URL (a rejected setting): everything between `//` and the last `@` may be a credential.
    return value.replace(/\/\/.*@/s, `//${REDACTED}@`).replace(/((?:pass|secret|token|key|auth)\w*=)[^&\s]*/gi, `$1${REDACTED}`);
  }
}

/** Every URL inside a text (a log line, an error message) redacted with {@link redactUrl}. */
export function redactUrls(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (m) => redactUrl(m));
}
