import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backboneRef, datasetPath, JobPathError, jobErrorMessage, jobPathRoots, resolveBackbone, resolveDataset, type JobPathRoots } from './job-paths';

describe('job paths', () => {
  let dataDir: string;
  let outside: string;
  let roots: JobPathRoots;
  const KNOWN = ['nsfw-mobilenet-v2', 'imagenet-mobilenet-v1-050-224'];

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'job-paths-'));
    outside = mkdtempSync(join(tmpdir(), 'job-paths-outside-'));
    mkdirSync(join(dataDir, 'datasets', 'shelf-a'), { recursive: true });
    writeFileSync(join(dataDir, 'datasets', 'train.csv'), 'image,label\n');
    mkdirSync(join(dataDir, 'backbones', 'mine'), { recursive: true });
    writeFileSync(join(dataDir, 'backbones', 'mine', 'backbone.json'), '{}');
    writeFileSync(join(outside, 'secret.csv'), 'root:x:0:0\n');
    // Links that stay inside, and links that leave the root.
    symlinkSync(join(dataDir, 'datasets', 'train.csv'), join(dataDir, 'datasets', 'alias.csv'));
    symlinkSync(join(outside, 'secret.csv'), join(dataDir, 'datasets', 'escape.csv'));
    symlinkSync(outside, join(dataDir, 'datasets', 'escape-dir'));
    symlinkSync('/proc/self', join(dataDir, 'datasets', 'proc-link'));
    symlinkSync(outside, join(dataDir, 'backbones', 'escape'));
    roots = jobPathRoots({ dataDir });
  });

  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  describe(jobPathRoots.name, () => {
    it('defaults to DATA_DIR/datasets and DATA_DIR/backbones, or takes comma-separated lists', () => {
      expect(roots.datasets).toEqual([join(dataDir, 'datasets')]);
      expect(roots.backbones).toEqual([join(dataDir, 'backbones')]);
      expect(jobPathRoots({ dataDir, trainingDatasetRoots: '/a, /b/c', trainingBackbone: 'x' })).toEqual({ datasets: ['/a', '/b/c'], backbones: [join(dataDir, 'backbones')], configuredBackbone: 'x' });
    });
  });

  describe(datasetPath.name, () => {
    it('resolves a relative dataset in the first root and accepts an absolute one inside a root', () => {
      expect(datasetPath('train.csv', roots)).toBe(join(dataDir, 'datasets', 'train.csv'));
      expect(datasetPath(join(dataDir, 'datasets', 'shelf-a'), roots)).toBe(join(dataDir, 'datasets', 'shelf-a'));
    });

    it.each([
      ['../../etc/passwd', /'\.\.' is not allowed/],
      ['shelf-a/../../pgdata', /'\.\.' is not allowed/],
      ['/etc/passwd', /outside TRAINING_DATASET_ROOTS/],
      ['/proc/self/environ', /\/proc, \/sys and \/dev are never read/],
      ['/proc/1/cmdline', /\/proc/],
      ['/dev/zero', /\/dev/],
      ['a\u0000b', /control characters/],
    ])('refuses %s naming the rule', (spec, rule) => {
      expect(() => datasetPath(spec, roots)).toThrow(JobPathError);
      expect(() => datasetPath(spec, roots)).toThrow(rule);
    });

    it('refuses any path when a root is /proc (a root cannot open the kernel files)', () => {
      expect(() => datasetPath('/proc/self/environ', { ...roots, datasets: ['/proc'] })).toThrow(/\/proc/);
    });
  });

  describe(resolveDataset.name, () => {
    it('follows a link that stays inside the root', async () => {
      await expect(resolveDataset('alias.csv', roots)).resolves.toBe(join(dataDir, 'datasets', 'train.csv'));
    });

    it.each(['escape.csv', 'escape-dir/secret.csv', 'escape-dir'])('refuses %s, a symlink out of the root', async (spec) => {
      await expect(resolveDataset(spec, roots)).rejects.toThrow(/leads outside TRAINING_DATASET_ROOTS \(.*\) through a link/);
    });

    it('refuses a symlink to /proc', async () => {
      await expect(resolveDataset('proc-link/environ', roots)).rejects.toThrow(/leads to \/proc, \/sys or \/dev/);
    });

    it('refuses a path that does not exist, without touching anything outside', async () => {
      await expect(resolveDataset('missing.csv', roots)).rejects.toThrow(/does not exist on the worker/);
    });
  });

  describe(backboneRef.name, () => {
    it('takes names, the configured backbone anywhere, and folders inside the backbone roots', () => {
      expect(backboneRef('nsfw-mobilenet-v2', roots)).toEqual({ kind: 'name', name: 'nsfw-mobilenet-v2' });
      expect(backboneRef('/opt/models/ref', { ...roots, configuredBackbone: '/opt/models/ref' })).toEqual({ kind: 'configured', spec: '/opt/models/ref' });
      expect(backboneRef(join(dataDir, 'backbones', 'mine'), roots)).toEqual({ kind: 'path', path: join(dataDir, 'backbones', 'mine') });
    });

    it.each([
      ['https://evil.example/backbone.json', /URLs are not allowed/],
      ['file:///etc/passwd', /URLs are not allowed/],
      ['/proc/self/environ', /\/proc/],
      ['/etc', /outside TRAINING_BACKBONE_ROOTS/],
      ['../datasets/train.csv', /'\.\.' is not allowed/],
    ])('refuses %s', (spec, rule) => {
      expect(() => backboneRef(spec, roots)).toThrow(rule);
    });
  });

  describe(resolveBackbone.name, () => {
    it('accepts a known name and a folder in the roots', async () => {
      await expect(resolveBackbone('nsfw-mobilenet-v2', roots, KNOWN)).resolves.toBe('nsfw-mobilenet-v2');
      await expect(resolveBackbone('mine', roots, KNOWN)).resolves.toBe(join(dataDir, 'backbones', 'mine'));
    });

    it('refuses an unknown name, and a link out of the roots', async () => {
      await expect(resolveBackbone('no-such-backbone', roots, KNOWN)).rejects.toThrow(/not a built-in or catalogue name/);
      await expect(resolveBackbone(join(dataDir, 'backbones', 'escape'), roots, KNOWN)).rejects.toThrow(/leads outside TRAINING_BACKBONE_ROOTS \(.*\) through a link/);
    });
  });

  describe(jobErrorMessage.name, () => {
    it('keeps the messages that name a rule, and replaces any other with a fixed form that quotes nothing', () => {
      expect(jobErrorMessage(new JobPathError('dataset: /etc is outside'), 'bottlenecks')).toBe('dataset: /etc is outside');
      let parseError: Error | undefined;
      try {
        JSON.parse('root:x:0:0:root:/root:/bin/bash');
      } catch (e) {
        parseError = e as Error;
      }
      const stored = jobErrorMessage(parseError!, 'bottlenecks');
      expect(stored).toBe("failed while bottlenecks (SyntaxError); the worker's log has the details");
      expect(stored).not.toContain('root');
    });
  });
});
