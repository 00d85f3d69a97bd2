import { BackboneError } from '../errors';
import type { Backbone } from './backbone';
import type { LoadBackboneOptions } from './resolve';

/** Placeholder until the download cache lands. */
export async function loadRemoteBackbone(spec: string, _opts: LoadBackboneOptions): Promise<Backbone> {
  throw new BackboneError(`backbone ${spec}: downloading backbones is not implemented yet`);
}
