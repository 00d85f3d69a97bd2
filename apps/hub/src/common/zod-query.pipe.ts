import { BadRequestException, type PipeTransform } from '@nestjs/common';
import type { z } from 'zod';

/**
 * Validates a request's query (or body) with the same library as the MQTT payloads.
 * A bad value becomes a 400 whose message names the parameter.
 */
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.infer<S>> {
  constructor(private readonly schema: S) {}

  transform(value: unknown): z.infer<S> {
    const result = this.schema.safeParse(value ?? {});
    if (result.success) return result.data;
    const messages = result.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`);
    throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: messages });
  }
}
