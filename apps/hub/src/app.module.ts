import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { ApiKeysModule } from './api-keys/api-keys.module';
import { AuditInterceptor } from './audit/audit.interceptor';
import { AuditModule } from './audit/audit.module';
import { AuthFailureThrottle } from './auth/auth-failure-throttle';
import { ACCESS_OPTIONS, AccessGuard, type AccessOptions } from './auth/access.guard';
import { RateLimitGuard } from './auth/rate-limit.guard';
import { LoggerModule, type Params as LoggerParams } from 'nestjs-pino';
import { DEVICE_LINK, type DeviceLink } from './broker/device-link';
import { MQTT_ACCESS_CONTROL, type MqttAccessControl } from './broker/mqtt-access-control';
import { GlobalExceptionFilter } from './common/global-exception.filter';
import { HUB_CONFIG, type HubConfig } from './config/hub-config';
import { BlobsModule } from './blobs/blobs.module';
import { CategoriesModule } from './categories/categories.module';
import { ClusterModule } from './cluster/cluster.module';
import { CorrectionsModule } from './corrections/corrections.module';
import { CredentialsModule } from './credentials/credentials.module';
import { DetectionsModule } from './detections/detections.module';
import { DisputesModule } from './disputes/disputes.module';
import { DevicesModule } from './devices/devices.module';
import { HealthController } from './health/health.controller';
import { WhoAmIController } from './auth/whoami.controller';
import { ConsoleStaticModule } from './console/console-static.module';
import { EventsModule } from './events/events.module';
import { IngestModule } from './ingest/ingest.module';
import { InventoryModule } from './inventory/inventory.module';
import { LocationsModule } from './locations/locations.module';
import { MetricsModule } from './metrics/metrics.module';
import { ModelsModule } from './models/models.module';
import { PrismaModule } from './prisma/prisma.module';
import { RetentionModule } from './retention/retention.module';
import { RolloutsModule } from './rollouts/rollouts.module';
import { SamplesModule } from './samples/samples.module';
import { TrainingModule } from './training/training.module';

@Module({})
class CoreModule {
  static forRoot(config: HubConfig, link: DeviceLink, access: MqttAccessControl | null, accessOptions: AccessOptions): DynamicModule {
    return {
      module: CoreModule,
      global: true,
      providers: [
        { provide: HUB_CONFIG, useValue: config },
        { provide: DEVICE_LINK, useValue: link },
        { provide: MQTT_ACCESS_CONTROL, useValue: access },
        { provide: ACCESS_OPTIONS, useValue: accessOptions },
      ],
      exports: [HUB_CONFIG, DEVICE_LINK, MQTT_ACCESS_CONTROL, ACCESS_OPTIONS],
    };
  }
}

@Module({})
export class AppModule {
  /**
   * `access`: the embedded broker's access control when MQTT_AUTH=on, else null; `logger`:
   * nestjs-pino's parameters (request logging); `accessOptions`: how `startHub` was called
   * (anonymous viewers only for the demo).
   */
  static forRoot(
    config: HubConfig,
    link: DeviceLink,
    access: MqttAccessControl | null = null,
    logger: LoggerParams = {},
    accessOptions: AccessOptions = { anonymousViewer: false },
  ): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(logger),
        CoreModule.forRoot(config, link, access, accessOptions),
        ThrottlerModule.forRoot({ throttlers: [{ name: 'per-key', ttl: 60_000, limit: config.httpRatePerMinute }] }),
        ClusterModule,
        ApiKeysModule,
        EventsModule,
        AuditModule,
        PrismaModule, MetricsModule, BlobsModule, IngestModule, DevicesModule, CredentialsModule, InventoryModule, LocationsModule, DetectionsModule, RetentionModule,
        TrainingModule, ModelsModule, CategoriesModule, SamplesModule, CorrectionsModule, DisputesModule, RolloutsModule,
        ConsoleStaticModule.forRoot()],
      controllers: [HealthController, WhoAmIController],
      providers: [
        { provide: APP_FILTER, useClass: GlobalExceptionFilter },
        // Guards run in this order: who is calling (and may they), then how often.
        AuthFailureThrottle,
        { provide: APP_GUARD, useClass: AccessGuard },
        { provide: APP_GUARD, useClass: RateLimitGuard },
        { provide: APP_INTERCEPTOR, useClass: AuditInterceptor },
      ],
    };
  }
}
