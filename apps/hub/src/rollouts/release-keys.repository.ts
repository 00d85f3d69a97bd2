import { Inject, Injectable } from '@nestjs/common';
import type { PrismaClient } from '@shelfsight/db';
import type { SignedKeyList } from '@shelfsight/contracts';
import { PrismaService } from '../prisma/prisma.service';

type Db = Pick<PrismaClient, '$queryRaw' | '$executeRaw'>;

/** SQL of release keys: the published root-signed key lists (public material) and the release counters per model line. */
@Injectable()
export class ReleaseKeysRepository {
  constructor(@Inject(PrismaService) private readonly db: Db) {}

  /** The newest key list published under a root. */
  async currentList(rootKeyId: string): Promise<SignedKeyList | undefined> {
    const rows = await this.db.$queryRaw<Array<{ signed: SignedKeyList }>>`
      SELECT signed FROM rollout_key_lists WHERE root_key_id = ${rootKeyId} ORDER BY version DESC LIMIT 1`;
    return rows[0]?.signed;
  }

  /** Record a list (a version already recorded is kept as it was); true when it was new. */
  async saveList(signed: SignedKeyList): Promise<boolean> {
    const n = await this.db.$executeRaw`
      INSERT INTO rollout_key_lists (version, root_key_id, signed) VALUES (${signed.list.version}, ${signed.list.root.keyId}, ${JSON.stringify(signed)}::jsonb)
      ON CONFLICT (root_key_id, version) DO NOTHING`;
    return n > 0;
  }

  /** The next release counter of (backbone, model line): one above every one signed before. */
  async nextReleaseCounter(backboneId: string, modelLine: string): Promise<number> {
    const rows = await this.db.$queryRaw<Array<{ counter: bigint }>>`
      INSERT INTO rollout_line_counters (backbone_id, model_line, counter) VALUES (${backboneId}, ${modelLine}, 1)
      ON CONFLICT (backbone_id, model_line) DO UPDATE SET counter = rollout_line_counters.counter + 1
      RETURNING counter`;
    return Number(rows[0]!.counter);
  }
}
