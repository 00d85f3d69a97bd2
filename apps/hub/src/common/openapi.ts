import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { AppModule } from '../app.module';
import { MqttDeviceLink } from '../broker/device-link';
import { HubMqttServer } from '../broker/hub-mqtt.server';
import { loadHubConfig } from '../config/hub-config';

/**
 * The hub's OpenAPI document (served at /docs, and the source of the console's generated
 * client). Request shapes come from the zod schemas that validate them (common/zod-openapi.ts).
 */
export function openApiDocumentOf(app: INestApplication): OpenAPIObject {
  const doc = new DocumentBuilder()
    .setTitle('ShelfSight hub')
    .setDescription('Inventory from the fleet\u2019s shelf detections; devices speak MQTT, people speak this API.')
    .setVersion('1')
    .setLicense('MIT', 'https://opensource.org/license/mit')
    // Relative: the hub that serves this document (at /docs) is the server.
    .addServer('/', 'this hub')
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key' }, 'api-key')
    .addSecurityRequirements('api-key')
    .build();
  return SwaggerModule.createDocument(app, doc);
}

/**
 * The same document without a database, broker or network: Nest's preview mode builds the
 * module graph and routes without instantiating providers (scripts/openapi.ts, its drift test).
 */
export async function previewOpenApiDocument(): Promise<OpenAPIObject> {
  const config = loadHubConfig({}, {});
  const link = new MqttDeviceLink(new HubMqttServer({ url: 'mqtt://127.0.0.1:1' }));
  const app = await NestFactory.create(AppModule.forRoot(config, link), { preview: true, logger: false, abortOnError: false });
  try {
    return openApiDocumentOf(app);
  } finally {
    await app.close();
  }
}
