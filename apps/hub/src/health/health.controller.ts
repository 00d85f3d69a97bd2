import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { DEVICE_LINK, type DeviceLink } from '../broker/device-link';
import { Public } from '../auth/roles';
import { PrismaService } from '../prisma/prisma.service';

/**
 * Two probes: `GET /health/live` says this process is alive (Kubernetes liveness: restart it
 * when it stops answering), `GET /health` says it can do its work (readiness: send it traffic).
 * A database or broker outage must not restart healthy hubs, so liveness depends on neither.
 */
@ApiTags('operations')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly prisma: PrismaService,
    @Inject(DEVICE_LINK) private readonly link: DeviceLink,
  ) {}

  /** 200 when the database answers and the broker connection is up, else 503 with the failing part. */
  @ApiOperation({ summary: 'Readiness: the database answers and the broker is connected' })
  @Get()
  async health(@Res() res: Response): Promise<void> {
    const database = await this.prisma
      .$queryRawUnsafe('SELECT 1')
      .then(() => 'up' as const)
      .catch(() => 'down' as const);
    const broker = this.link.connected ? ('up' as const) : ('down' as const);
    const ok = database === 'up' && broker === 'up';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', database, broker });
  }

  /** 200 whenever the event loop runs: asks nothing of the database or the broker. */
  @ApiOperation({ summary: 'Liveness' })
  @Get('live')
  live(): { status: 'alive'; uptimeS: number } {
    return { status: 'alive', uptimeS: Math.round(process.uptime()) };
  }
}
