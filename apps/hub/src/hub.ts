import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type INestApplication, Logger, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { DestinationStream } from 'pino';
import { ConfigError, redactUrl, withTimeout } from '@shelfsight/common';
import helmet from 'helmet';
import { applyMigrations, startEmbeddedPostgres, type EmbeddedPostgres } from '@shelfsight/db';
import { AppModule } from './app.module';
import { bodyLimitMiddleware } from './common/body-limit.middleware';
import { openApiDocumentOf } from './common/openapi';
import { listRouteRules } from './auth/route-rules';
import { trustProxyValue } from './auth/trust-proxy';
import { MqttDeviceLink } from './broker/device-link';
import { brokerBacklog, startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded-broker';
import { HubMqttServer } from './broker/hub-mqtt.server';
import { MqttAccessControl } from './broker/mqtt-access-control';
import { MqttLimits } from './broker/mqtt-limits';
import { HubMetrics } from './metrics/hub-metrics';
import type { HubConfig } from './config/hub-config';
import { hubLoggerParams, nestLoggerOf } from './logging/hub-logger';
import { ClusterBus, PgNotifyClusterBus } from './cluster/cluster-bus';

export interface HubHandle {
  httpUrl: string;
  /** Where devices connect. */
  mqttUrl: string;
  databaseUrl: string;
  app: INestApplication;
  stop(): Promise<void>;
}

export interface StartHubOptions {
  /** Nest log levels; false silences the hub (tests); default `LOG_LEVEL` (info). */
  logLevels?: LogLevel[] | false;
  /**
   * Requests without an API key may read the viewer endpoints. Only the zero-config demo
   * (`shelf start`) sets this; it is deliberately not a setting, so no deployment can.
   */
  anonymousViewer?: boolean;
  /** Where the hub's JSON log lines go; default stderr. */
  logDestination?: DestinationStream;
}

/**
 * Start the hub: database (external or embedded PGlite) with migrations applied, MQTT
 * broker (external or embedded aedes), then the hybrid Nest app (HTTP + MQTT).
 */
export async function startHub(config: HubConfig, opts: StartHubOptions = {}): Promise<HubHandle> {
  // One JSON format (pino) for Nest's own logs, services' Logger calls and HTTP requests.
  const logParams = hubLoggerParams({ levels: opts.logLevels, ...(opts.logDestination ? { destination: opts.logDestination } : {}) });
  const nestLogger = nestLoggerOf(logParams);
  Logger.overrideLogger(nestLogger);
  const log = new Logger('Hub');
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    // Each step is bounded: a connection that never closes must not keep the hub from exiting.
    for (const fn of cleanups.reverse()) {
      const done = await withTimeout(
        fn().then(() => true).catch((e: unknown) => {
          log.warn(`shutdown step failed: ${(e as Error).message}`);
          return true;
        }),
        10_000,
      );
      if (!done) log.warn('a shutdown step did not finish within 10 s; going on');
    }
  };
  try {
    let databaseUrl = config.databaseUrl;
    let embeddedDb: EmbeddedPostgres | undefined;
    if (!databaseUrl) {
      const dataDir = join(config.dataDir, 'pgdata');
      embeddedDb = await startEmbeddedPostgres({ dataDir });
      cleanups.push(() => embeddedDb!.stop());
      databaseUrl = embeddedDb.url;
      log.log(`embedded PostgreSQL (PGlite) in ${dataDir}, serving ${redactUrl(embeddedDb.url)}`);
    }
    const migrations = await applyMigrations(databaseUrl);
    if (migrations.applied.length > 0) log.log(`applied migrations: ${migrations.applied.join(', ')}`);

    let mqttUrl = config.mqttUrl;
    let broker: EmbeddedBroker | undefined;
    let access: MqttAccessControl | undefined;
    let limits: MqttLimits | undefined;
    if (!mqttUrl) {
      access = config.mqttAuth === 'on' ? new MqttAccessControl() : undefined;
      limits = new MqttLimits({ maxPacketBytes: config.mqttMaxPacketBytes, ratePerS: config.mqttRatePerS, burst: config.mqttBurst, hubQueueBytes: config.mqttHubQueueBytes });
      if ((config.mqttTlsCert === undefined) !== (config.mqttTlsKey === undefined)) {
        throw new ConfigError('invalid configuration:\n  MQTT_TLS_CERT and MQTT_TLS_KEY go together: set both (TLS) or neither (plain MQTT)');
      }
      const tls = config.mqttTlsCert && config.mqttTlsKey ? { cert: readFileSync(config.mqttTlsCert), key: readFileSync(config.mqttTlsKey) } : undefined;
      broker = await startEmbeddedBroker(config.mqttPort, config.mqttHost, access, limits, tls);
      if (tls) log.log(`embedded broker speaks MQTT over TLS only (certificate ${config.mqttTlsCert})`);
      cleanups.push(() => broker!.stop());
      mqttUrl = broker.url;
      if (access) log.log('embedded broker admits provisioned devices only (MQTT_AUTH=on; provision with `shelf device add`)');
      else {
        log.warn(
          `OPEN BROKER: the embedded broker on ${config.mqttHost} accepts any client as any device (MQTT_AUTH=off), for demos and tests` +
            (isLoopback(config.mqttHost) ? '' : '; set MQTT_AUTH=on beyond a trusted network'),
        );
      }
    } else {
      log.log('device authentication and ACLs are the external broker\u2019s (MQTT_URL); MQTT_AUTH applies to the embedded broker only');
    }
    const server = new HubMqttServer(
      {
        url: mqttUrl,
        clientId: `${MqttAccessControl.HUB_CLIENT_ID_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`,
        ...(access ? { username: MqttAccessControl.HUB_USERNAME, password: access.hubSecret } : {}),
        protocolVersion: broker ? 4 : 5,
        // The hub's own client reaches its own TLS listener on loopback: the certificate names
        // the host devices use, not 127.0.0.1, and the connection never leaves this machine.
        ...(broker?.tls ? { rejectUnauthorized: false } : {}),
        reconnectPeriod: 1000,
        subscribeOptions: { qos: 1 },
      },
      broker ? undefined : config.mqttShareGroup,
    );
    // PGlite runs one query at a time and its socket server interleaves connections only
    // at transaction boundaries: one connection is all it can use, and the safest.
    const resolved: HubConfig = { ...config, databaseUrl, mqttUrl, dbPoolSize: embeddedDb ? 1 : config.dbPoolSize };
    const anonymousViewer = opts.anonymousViewer === true;
    const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(resolved, new MqttDeviceLink(server), access ?? null, logParams, { anonymousViewer }), {
      logger: nestLogger,
      bodyParser: false,
    });
    const metrics = app.get(HubMetrics);
    // req.ip (rate limits, the auth-failure lockout, the audit) is the client behind TRUST_PROXY's hops, else the TCP peer.
    app.set('trust proxy', trustProxyValue(config.trustProxy));
    // Before any body is read: security headers, bounded body parsers (a body over
    // HTTP_MAX_BODY_BYTES is refused with 413 from its Content-Length, or as soon as that many
    // bytes have arrived). Request ids come from the logger (nestjs-pino, `req.id`).
    // helmet's defaults, except upgrade-insecure-requests: a hub on a plain-HTTP LAN address
    // would otherwise send browsers to https:// for the console's own scripts (TLS, where
    // used, is a proxy's job, and HSTS covers it there). Images also from blob: URLs: the
    // console shows API images (sample thumbnails, fetched with the key header) that way.
    app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null, imgSrc: ["'self'", 'data:', 'blob:'] } } }));
    // Model uploads (POST /models, read as a stream by the registry) have their own, larger bound.
    const bodyLimit = (req: { method: string; path: string }) => (req.method === 'POST' && req.path === '/models' ? config.modelUploadMaxBytes : config.httpMaxBodyBytes);
    app.use(bodyLimitMiddleware(bodyLimit, () => metrics.httpBodyRefused.inc({ reason: 'too_large' })));
    app.useBodyParser('json', { limit: config.httpMaxBodyBytes });
    app.useBodyParser('urlencoded', { limit: config.httpMaxBodyBytes, extended: false, parameterLimit: 100 });
    // Raw bodies, except model uploads: POST /models reads its own stream (bounded by MODEL_UPLOAD_MAX_BYTES).
    const rawBody = (req: { method?: string; url?: string; headers: Record<string, string | string[] | undefined> }) =>
      !(req.method === 'POST' && /^\/models(?:[/?]|$)/.test(req.url ?? '')) && /^(?:application\/octet-stream|image\/)/i.test(String(req.headers['content-type'] ?? ''));
    app.useBodyParser('raw', { limit: config.httpMaxBodyBytes, type: rawBody });
    for (const r of listRouteRules(app).filter((rule) => !rule.access)) {
      log.error(`${r.method} ${r.path} (${r.handler}) has no access rule (@RequireRole or @Public): it answers 500`);
    }
    if (anonymousViewer) {
      log.warn('DEMO MODE: requests WITHOUT an API key may read inventory, history, locations, detections, devices and metrics (`shelf start` only; `shelf hub` always needs keys)');
    }
    app.enableShutdownHooks();
    limits?.attach((reason) => metrics.mqttRefused.inc({ reason }));
    if (limits && broker) {
      const [l, b] = [limits, broker];
      metrics.mqttHubQueueBytes.readFrom(() => l.hubQueuedBytes());
      metrics.mqttBrokerBacklog.readFrom(() => brokerBacklog(b));
    }
    cleanups.push(() => app.close());
    // Before app.close() too (cleanups run in reverse): the replicas' listening connection and its
    // reconnect timer end even when a shutdown hook makes app.close() outlast its bound.
    const clusterBus = app.get(ClusterBus);
    cleanups.push(async () => {
      if (clusterBus instanceof PgNotifyClusterBus) await clusterBus.close();
    });
    // Runs first (cleanups run in reverse): no more device messages, and the MQTT client gone
    // before the broker stops, even when a shutdown hook makes app.close() outlast its 10 s.
    cleanups.push(() => server.close());
    SwaggerModule.setup('docs', app, openApiDocumentOf(app));
    app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
    await app.startAllMicroservices();
    await app.listen(config.httpPort, config.httpHost);
    const address = app.getHttpServer().address() as { port: number };
    const httpUrl = `http://127.0.0.1:${address.port}`;
    const devicesConnectTo = broker ? `${broker.tls ? 'mqtts' : 'mqtt'}://<this-host>:${broker.port}` : redactUrl(mqttUrl);
    log.log(`REST API on ${httpUrl} (docs at /docs); devices connect to ${devicesConnectTo}${broker ? ' (embedded broker)' : ''}`);
    return {
      httpUrl,
      mqttUrl: broker ? broker.url : mqttUrl,
      databaseUrl,
      app,
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
