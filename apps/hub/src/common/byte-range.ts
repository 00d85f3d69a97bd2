import type { Request, Response } from 'express';

/**
 * The one byte range a request asks for of an object of `bytes` (HTTP `Range`), undefined
 * for the whole object; `'unsatisfiable'` after answering 416 with `Content-Range: bytes *\/size`
 * (a range beyond the end, or several ranges: downloads resume with one).
 */
export function requestedRange(req: Request, res: Response, bytes: number): { start: number; end: number } | undefined | 'unsatisfiable' {
  const ranges = req.headers.range ? req.range(bytes, { combine: true }) : undefined;
  if (ranges === -1 || (Array.isArray(ranges) && ranges.length !== 1)) {
    res.setHeader('Content-Range', `bytes */${bytes}`);
    res.status(416).end();
    return 'unsatisfiable';
  }
  return Array.isArray(ranges) && ranges[0] ? { start: ranges[0].start, end: ranges[0].end } : undefined;
}

/** Status and length headers of a 200 (whole object) or 206 (`range` of it) answer. */
export function sendRangeHeaders(res: Response, bytes: number, range: { start: number; end: number } | undefined): void {
  if (range) {
    res.status(206);
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${bytes}`);
    res.setHeader('Content-Length', String(range.end - range.start + 1));
  } else {
    res.status(200);
    res.setHeader('Content-Length', String(bytes));
  }
}
