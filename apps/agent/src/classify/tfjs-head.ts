import { readFile } from 'node:fs/promises';
import { labelsHash, unpackArtifact, verifyArtifact, type RolloutManifest } from '@shelfsight/contracts';
import { Head, modelTail, TfjsFrameClassifier, TTA_MODES, ttaViews, type TtaMode } from '@shelfsight/vision';

export class TfjsHeadError extends Error {
  override name = 'TfjsHeadError';
}

/**
 * Load an offered head for the TensorFlow.js classifier: the artifact is what the registry
 * serves (`GET /models/:version/artifact`: the `shelf train` folder as a tar), verified
 * (manifest, weights sha256, labels, shape) and paired with the backbone the device already
 * runs — only the head travels. Refuses a head for another backbone (id or checksum), an
 * input size other than the backbone's feature size, or one that is not what the rollout
 * manifest signed (version, label list).
 */
export async function loadTfjsHead(file: string, manifest: Pick<RolloutManifest, 'modelVersion' | 'labelsHash'>, running: TfjsFrameClassifier, topK: number): Promise<TfjsFrameClassifier> {
  const verified = verifyArtifact(await unpackArtifact(await readFile(file)));
  const m = verified.manifest;
  const backbone = running.backbone;
  if (m.version !== manifest.modelVersion) throw new TfjsHeadError(`artifact holds ${m.version}, the manifest names ${manifest.modelVersion}`);
  if (m.backbone.id !== backbone.id || m.backbone.checksum !== backbone.checksum) {
    throw new TfjsHeadError(`head ${m.version} is for backbone ${m.backbone.id} (${m.backbone.checksum.slice(0, 12)}…), this device runs ${backbone.id} (${backbone.checksum.slice(0, 12)}…)`);
  }
  if (m.head.inputDim !== backbone.featureDim) throw new TfjsHeadError(`head ${m.version} takes ${m.head.inputDim} features, the backbone gives ${backbone.featureDim}`);
  if (labelsHash(verified.labels) !== manifest.labelsHash) throw new TfjsHeadError(`head ${m.version}: its labels do not hash to the signed labels hash`);
  const head = Head.fromWeights(verified.head.spec, verified.head.weights);
  if (verified.head.groups) head.groups = verified.head.groups;
  const tta = (TTA_MODES as readonly string[]).includes(String(m.training.tta)) ? (m.training.tta as TtaMode) : 'none';
  try {
    // The backbone stays the running classifier's: this head never disposes it.
    // A tuned model brings its tail: the device's backbone runs up to the freeze point only.
    return new TfjsFrameClassifier(backbone, head, verified.labels, m, topK, false, ttaViews(tta), modelTail(m, verified.tailWeights));
  } catch (err) {
    head.dispose();
    throw err;
  }
}
