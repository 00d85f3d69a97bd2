import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags, ApiUnprocessableEntityResponse } from '@nestjs/swagger';
import { SignedKeyListSchema, type ReleaseKeyList, type SignedKeyList } from '@shelfsight/contracts';
import { Public, RequireRole } from '../auth/roles';
import { ZodBody } from '../common/zod-openapi';
import { SigningKeys } from './signing-keys';

/** The root-signed release key list: read by devices (public: it is signed), replaced by admins (a rotation or revocation). */
@ApiTags('rollouts')
@Controller('rollouts/key-list')
export class ReleaseKeysController {
  constructor(private readonly keys: SigningKeys) {}

  /** The current release key list, as devices take it (also retained on MQTT): `{ list, signature }`. */
  @ApiOperation({ summary: 'Get the signed release key list' })
  @Get()
  @Public()
  @ApiOkResponse({ description: 'the current root-signed release key list' })
  current(): SignedKeyList {
    return this.keys.keyList();
  }

  /**
   * Publish a newer list signed by the hub's root (`shelf keys list sign`): devices take it at
   * once (retained MQTT) and refuse manifests of keys it no longer names. 422 when it is not
   * signed by the root, expired, or not newer.
   */
  @ApiOperation({ summary: 'Publish a new signed release key list' })
  @Post()
  @RequireRole('admin')
  @HttpCode(200)
  @ApiOkResponse({ description: 'published: the list devices now take, and whether the hub signs manifests with a key it names' })
  @ApiUnprocessableEntityResponse({ description: 'not signed by the hub\u2019s root, expired, or not newer than the current list' })
  async publish(@ZodBody(SignedKeyListSchema) body: SignedKeyList): Promise<{ list: ReleaseKeyList; signsWithListedKey: boolean }> {
    return this.keys.publishList(body);
  }
}
