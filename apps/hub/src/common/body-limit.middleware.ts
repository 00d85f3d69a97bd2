import type { NextFunction, Request, Response } from 'express';

/**
 * Refuses a request body over `maxBytes` as soon as that is known: at once from its
 * Content-Length, or when a chunked body has brought more than that many bytes. The
 * refusal is a 413 with `Connection: close`; the rest of the body is neither read into
 * memory nor waited for (body-parser alone would drain it all before answering). The body
 * parsers keep the same limit as a second line.
 */
export function bodyLimitMiddleware(maxBytes: number, onRefuse: () => void) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (Number.isFinite(declared) && declared > maxBytes) {
      refuse(req, res, maxBytes, onRefuse);
      return;
    }
    if (req.headers['transfer-encoding'] !== undefined) {
      // Count a chunked body as it arrives; past the limit, answer and drop what follows.
      let received = 0;
      let refused = false;
      const push = req.push.bind(req);
      req.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
        if (refused) return false;
        if (chunk !== null && chunk !== undefined) {
          received += (chunk as Buffer).length;
          if (received > maxBytes) {
            refused = true;
            refuse(req, res, maxBytes, onRefuse);
            return false;
          }
        }
        return push(chunk, encoding);
      };
    }
    next();
  };
}

function refuse(req: Request, res: Response, maxBytes: number, onRefuse: () => void): void {
  onRefuse();
  if (res.headersSent) return;
  res.writeHead(413, { 'Content-Type': 'application/json; charset=utf-8', Connection: 'close' });
  res.end(JSON.stringify({ statusCode: 413, error: 'too_large', message: `request body larger than ${maxBytes} bytes` }));
  // Let the answer reach the client, then stop reading what it still sends.
  res.once('finish', () => setTimeout(() => req.socket.destroy(), 500).unref());
}
