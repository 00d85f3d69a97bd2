import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { LoggerModule, type Params as LoggerParams } from 'nestjs-pino';
import { DEVICE_LINK, type DeviceLink } from './broker/device-link';
import { MQTT_ACCESS_CONTROL, type MqttAccessControl } from './broker/mqtt-access-control';
import { GlobalExceptionFilter } from './common/global-exception.filter';
import { HUB_CONFIG, type HubConfig } from './config/hub-config';
import { BlobsModule } from './blobs/blobs.module';
import { CategoriesModule } from './categories/categories.module';
import { CorrectionsModule } from './corrections/corrections.module';
import { CredentialsModule } from './credentials/credentials.module';
import { DetectionsModule } from './detections/detections.module';
import { DisputesModule } from './disputes/disputes.module';
import { DevicesModule } from './devices/devices.module';
import { HealthController } from './health/health.controller';
import { IngestModule } from './ingest/ingest.module';
import { InventoryModule } from './inventory/inventory.module';
import { LocationsModule } from './locations/locations.module';
import { MetricsModule } from './metrics/metrics.module';
import { ModelsModule } from './models/models.module';
import { PrismaModule } from './prisma/prisma.module';
import { RetentionModule } from './retention/retention.module';
import { SamplesModule } from './samples/samples.module';

@Module({})
class CoreModule {
  static forRoot(config: HubConfig, link: DeviceLink, access: MqttAccessControl | null): DynamicModule {
    return {
      module: CoreModule,
      global: true,
      providers: [
        { provide: HUB_CONFIG, useValue: config },
        { provide: DEVICE_LINK, useValue: link },
        { provide: MQTT_ACCESS_CONTROL, useValue: access },
      ],
      exports: [HUB_CONFIG, DEVICE_LINK, MQTT_ACCESS_CONTROL],
    };
  }
}

@Module({})
export class AppModule {
  /** `access`: the embedded broker's access control when MQTT_AUTH=on, else null; `logger`: nestjs-pino's parameters (request logging). */
  static forRoot(config: HubConfig, link: DeviceLink, access: MqttAccessControl | null = null, logger: LoggerParams = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [LoggerModule.forRoot(logger), CoreModule.forRoot(config, link, access), PrismaModule, MetricsModule, BlobsModule, IngestModule, DevicesModule, CredentialsModule, InventoryModule, LocationsModule, DetectionsModule, RetentionModule, ModelsModule, CategoriesModule, SamplesModule, CorrectionsModule, DisputesModule],
      controllers: [HealthController],
      providers: [{ provide: APP_FILTER, useClass: GlobalExceptionFilter }],
    };
  }
}
