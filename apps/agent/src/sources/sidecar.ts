import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { LocationCodeSchema, SiteSchema } from '@shelfsight/contracts';
import { locationFromFileName } from './frame';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

/** Optional `<basename>.json` next to an image. */
export const SidecarSchema = z.object({
  location: LocationCodeSchema,
  capturedAt: z.iso.datetime({ offset: true }).optional(),
  site: SiteSchema.optional(),
});
export type Sidecar = z.infer<typeof SidecarSchema>;

export type FrameMetadata = { location: string; capturedAt: string; site?: string };
export type MetadataProblem = { reason: 'no_location' | 'bad_sidecar'; detail: string };

/**
 * Metadata of an image file: from its sidecar `<basename>.json` if present, else the
 * location from a file-name prefix (`A-03-2-B_0001.jpg`) and the capture time from mtime.
 */
export async function readFrameMetadata(
  rel: string,
  abs: string,
  mtime: Date,
): Promise<FrameMetadata | MetadataProblem> {
  const sidecarPath = abs.slice(0, abs.length - path.extname(abs).length) + '.json';
  let text: string | undefined;
  try {
    text = await fsp.readFile(sidecarPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return { reason: 'bad_sidecar', detail: String(err) };
  }
  if (text !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { reason: 'bad_sidecar', detail: 'sidecar is not valid JSON' };
    }
    const parsed = SidecarSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { reason: 'bad_sidecar', detail: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` };
    }
    return {
      location: parsed.data.location,
      capturedAt: parsed.data.capturedAt ?? mtime.toISOString(),
      site: parsed.data.site,
    };
  }
  const location = locationFromFileName(path.basename(rel));
  if (!location) return { reason: 'no_location', detail: 'no sidecar and the file name does not start with a location code' };
  return { location, capturedAt: mtime.toISOString() };
}
