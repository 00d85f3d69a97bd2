import { z } from 'zod';
import { BackboneError } from '../errors';
import type { BackboneManifest } from './backbone';
import { FreezePointSchema } from './freeze';

const Pair = z.tuple([z.number(), z.number()]);
export const BackboneManifestSchema = z.object({
  name: z.string().min(1).max(128),
  description: z.string().optional(),
  format: z.enum(['tfjs-graph', 'tfjs-layers']),
  modelFile: z.string().min(1).optional(),
  inputNode: z.string().min(1).optional(),
  featureNode: z.string().min(1).optional(),
  inputSize: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  inputRange: Pair,
  featureDim: z.number().int().positive(),
  license: z.string().optional(),
  /** Graph models: nodes where `shelf train --tune-from` may cut the backbone (see freeze.ts). */
  freezePoints: z.array(FreezePointSchema).optional(),
});

export function parseBackboneManifest(raw: unknown, where: string): BackboneManifest {
  const r = BackboneManifestSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new BackboneError(`invalid backbone manifest ${where}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim());
  }
  return r.data;
}
