import { BadRequestException, type PipeTransform } from '@nestjs/common';
import type { z } from 'zod';

/**
 * Validates a request's query (or body) with the same library as the MQTT payloads.
 * A bad value becomes a 400 whose message names the parameter.
 */
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.infer<S>> {
  /** `name` labels errors about the value as a whole (a path parameter), e.g. `code`. */
  constructor(
    private readonly schema: S,
    private readonly name = 'query',
  ) {}

  transform(value: unknown): z.infer<S> {
    const result = this.schema.safeParse(value ?? {});
    if (result.success) return result.data;
    const messages = result.error.issues.map((i) => `${i.path.join('.') || this.name}: ${i.message}`);
    throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: messages });
  }
}
