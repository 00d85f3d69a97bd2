import { Module } from '@nestjs/common';
import { CredentialsModule } from '../credentials/credentials.module';
import { ModelsModule } from '../models/models.module';
import { DeviceHttpAuth } from './device-http-auth';
import { DownloadTokens } from './download-tokens';
import { RolloutArtifactsService } from './rollout-artifacts.service';
import { RolloutsMqttController } from './rollouts-mqtt.controller';
import { ReleaseKeysController } from './release-keys.controller';
import { ReleaseKeysRepository } from './release-keys.repository';
import { RolloutsController } from './rollouts.controller';
import { RolloutsRepository } from './rollouts.repository';
import { RolloutStatusWriter } from './rollout-status-writer';
import { ROLLOUT_CLOCK, RolloutsService } from './rollouts.service';
import { SigningKeys } from './signing-keys';

/** Fleet rollouts: signing keys, offers, the stage engine, device statuses, artifact delivery. */
@Module({
  imports: [ModelsModule, CredentialsModule],
  // Before RolloutsController: its GET :id would take /rollouts/key-list.
  controllers: [ReleaseKeysController, RolloutsController, RolloutsMqttController],
  providers: [RolloutsService, RolloutsRepository, ReleaseKeysRepository, RolloutStatusWriter, SigningKeys, DownloadTokens, DeviceHttpAuth, RolloutArtifactsService, { provide: ROLLOUT_CLOCK, useValue: () => new Date() }],
  exports: [RolloutsService],
})
export class RolloutsModule {}
