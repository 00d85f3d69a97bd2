import { realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/**
 * Where a training job may read from. A job's `base.dataset` and `backbone` come from an
 * API caller; they resolve only inside these roots, never anywhere else on the machine
 * the worker runs on (no `..`, no absolute path outside a root, no symlink out of one, no
 * `/proc`, `/sys` or `/dev`). The hub checks a request's paths as written when the job is
 * created (400 naming the rule); the worker checks them again, on the real file system
 * (symlinks resolved), before it opens anything.
 */
export interface JobPathRoots {
  /** Folders datasets may be read from; a relative dataset resolves in the first. */
  datasets: readonly string[];
  /** Folders a backbone folder (or its backbone.json) may be in; a relative one resolves in the first. */
  backbones: readonly string[];
  /** The operator's own TRAINING_BACKBONE: allowed wherever it is (it is configuration, not a request). */
  configuredBackbone?: string;
}

/** A job path outside the configured roots. The message names the rule, never a file's contents. */
export class JobPathError extends Error {
  override name = 'JobPathError';
}

/** Kernel and device file systems: never a dataset or backbone, whatever root is configured. */
const FORBIDDEN = ['/proc', '/sys', '/dev'];
/** A backbone named rather than located: a built-in or catalogue name (the worker checks it is one). */
const BACKBONE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The roots from the settings: a comma-separated list each, default DATA_DIR/datasets and DATA_DIR/backbones. */
export function jobPathRoots(settings: { dataDir: string; trainingDatasetRoots?: string; trainingBackboneRoots?: string; trainingBackbone?: string }): JobPathRoots {
  const list = (value: string | undefined, fallback: string) =>
    (value ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0)
      .map((s) => resolve(s))
      .concat(value && value.trim() ? [] : [resolve(settings.dataDir, fallback)]);
  return {
    datasets: list(settings.trainingDatasetRoots, 'datasets'),
    backbones: list(settings.trainingBackboneRoots, 'backbones'),
    ...(settings.trainingBackbone ? { configuredBackbone: settings.trainingBackbone } : {}),
  };
}

function inside(path: string, root: string): boolean {
  const r = relative(root, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

function forbidden(path: string): boolean {
  return FORBIDDEN.some((f) => path === f || path.startsWith(f + sep));
}

/**
 * The absolute path `spec` names inside one of `roots`, checked as written (no file system
 * access): relative paths resolve in the first root. Throws {@link JobPathError}.
 */
export function pathInRoots(what: 'dataset' | 'backbone', spec: string, roots: readonly string[], setting: string): string {
  if ([...spec].some((c) => c.charCodeAt(0) < 0x20)) throw new JobPathError(`${what}: control characters are not allowed in a path`);
  if (spec.split(/[/\\]/).includes('..')) throw new JobPathError(`${what}: '..' is not allowed in a path; name it relative to ${setting} (${roots.join(', ')})`);
  if (roots.length === 0) throw new JobPathError(`${what}: no ${setting} configured`);
  const path = isAbsolute(spec) ? resolve(spec) : resolve(roots[0] as string, spec);
  if (forbidden(path)) throw new JobPathError(`${what}: /proc, /sys and /dev are never read by training jobs`);
  for (const root of roots) if (forbidden(root)) throw new JobPathError(`${what}: ${setting} may not include /proc, /sys or /dev`);
  if (!roots.some((root) => inside(path, root))) throw new JobPathError(`${what}: ${spec} is outside ${setting} (${roots.join(', ')}); training jobs read only from there`);
  return path;
}

/**
 * `path` (already inside a root as written) with every symlink resolved, still inside the
 * real path of one of `roots`. Throws {@link JobPathError} when it does not exist or leaves them.
 */
export async function realPathInRoots(what: 'dataset' | 'backbone', path: string, roots: readonly string[], setting: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new JobPathError(`${what}: ${path} does not exist on the worker`);
  }
  if (forbidden(real)) throw new JobPathError(`${what}: ${path} leads to /proc, /sys or /dev, which training jobs never read`);
  const realRoots = await Promise.all(roots.map((r) => realpath(r).catch(() => undefined)));
  if (!realRoots.some((root) => root !== undefined && inside(real, root))) {
    throw new JobPathError(`${what}: ${path} leads outside ${setting} (${roots.join(', ')}) through a link; training jobs read only from there`);
  }
  return real;
}

export type BackboneRef = { kind: 'name'; name: string } | { kind: 'configured'; spec: string } | { kind: 'path'; path: string };

/**
 * What a job's backbone spec may be: the configured TRAINING_BACKBONE, a built-in or
 * catalogue name (checked by the worker, which knows them), or a folder inside the backbone
 * roots. URLs are refused: a request must not make the worker fetch from anywhere.
 */
export function backboneRef(spec: string, roots: JobPathRoots): BackboneRef {
  if (roots.configuredBackbone !== undefined && spec === roots.configuredBackbone) return { kind: 'configured', spec };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw new JobPathError('backbone: URLs are not allowed in training jobs; use a built-in or catalogue name, or a folder in TRAINING_BACKBONE_ROOTS');
  if (BACKBONE_NAME.test(spec) && spec !== '.' && spec !== '..') return { kind: 'name', name: spec };
  return { kind: 'path', path: pathInRoots('backbone', spec, roots.backbones, 'TRAINING_BACKBONE_ROOTS') };
}

/** A request's dataset, checked as written (the hub, at job creation). */
export function datasetPath(spec: string, roots: JobPathRoots): string {
  return pathInRoots('dataset', spec, roots.datasets, 'TRAINING_DATASET_ROOTS');
}

/** A request's dataset on the worker's file system: inside the roots once links are resolved. */
export async function resolveDataset(spec: string, roots: JobPathRoots): Promise<string> {
  return realPathInRoots('dataset', datasetPath(spec, roots), roots.datasets, 'TRAINING_DATASET_ROOTS');
}

/**
 * A backbone spec on the worker: a name must be one of `known` (built-ins and catalogue),
 * a path must exist inside the roots once links are resolved. Returns the spec to load.
 */
export async function resolveBackbone(spec: string, roots: JobPathRoots, known: readonly string[]): Promise<string> {
  const ref = backboneRef(spec, roots);
  if (ref.kind === 'configured') return spec;
  if (ref.kind === 'name') {
    if (!known.includes(ref.name)) {
      // A bare relative folder name inside the first root is a path after all.
      const path = join(roots.backbones[0] ?? '', ref.name);
      const real = await realPathInRoots('backbone', path, roots.backbones, 'TRAINING_BACKBONE_ROOTS').catch(() => undefined);
      if (real) return real;
      throw new JobPathError(`backbone: ${ref.name} is not a built-in or catalogue name, nor a folder in TRAINING_BACKBONE_ROOTS`);
    }
    return ref.name;
  }
  return realPathInRoots('backbone', ref.path, roots.backbones, 'TRAINING_BACKBONE_ROOTS');
}

/**
 * Errors whose messages the hub writes itself (the request's fault, named by rule) or the
 * dataset loader's (a dataset inside the roots; it never quotes a file's text): stored as
 * they are. The vision library's DatasetError is recognised by name (the hub does not load it).
 */
const STORED_AS_IS = new Set(['JobPathError', 'TrainingJobInputError', 'DatasetError']);

/**
 * The error a failed job stores (and GET /training-jobs/:id returns): the message of an
 * error that names a rule, otherwise a fixed form with the phase and the error's kind —
 * never an arbitrary message, which could quote a file the job opened (JSON.parse does).
 */
export function jobErrorMessage(err: Error, phase: string | undefined): string {
  if (STORED_AS_IS.has(err.name)) return err.message.slice(0, 2000);
  const kind = /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(err.name) ? err.name : 'Error';
  return `failed while ${phase ?? 'starting'} (${kind}); the worker's log has the details`;
}
