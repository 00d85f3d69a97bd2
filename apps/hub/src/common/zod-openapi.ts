import { Body, Param, Query } from '@nestjs/common';
import { ApiBody, ApiParam, ApiQuery } from '@nestjs/swagger';
import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { z } from 'zod';
import { ZodPipe } from './zod-query.pipe';

/**
 * The one home for "validate with zod, document with the same schema": the request is parsed
 * by {@link ZodPipe} and the OpenAPI document (and with it the console's generated client)
 * is derived from that very schema, so they cannot drift.
 */

/**
 * zod writes `z.base64()` as JSON Schema 2019's `contentEncoding: base64`, which OpenAPI 3.0
 * does not have (Redocly's struct rule): 3.0 says base64 with `format: byte`.
 */
function base64AsByte(ctx: { jsonSchema: Record<string, unknown> }): void {
  if (ctx.jsonSchema.contentEncoding !== 'base64') return;
  delete ctx.jsonSchema.contentEncoding;
  ctx.jsonSchema.format = 'byte';
}

/** OpenAPI 3.0 schema of what a client sends (the schema's input side, before transforms). */
export function openApiSchemaOf(schema: z.ZodType): SchemaObject {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any', override: base64AsByte }) as Record<string, unknown>;
  delete json.$schema;
  return json as SchemaObject;
}

type ParamDecorator = (target: object, key: string | symbol | undefined, index: number) => void;

function methodOf(target: object, key: string | symbol | undefined): PropertyDescriptor {
  const descriptor = key === undefined ? undefined : Object.getOwnPropertyDescriptor(target, key);
  if (!descriptor) throw new Error('zod request decorators go on a handler parameter');
  return descriptor;
}

/** `@ZodQuery(Schema) q`: the query string validated by an object schema and documented parameter by parameter. */
export function ZodQuery<S extends z.ZodType>(schema: S): ParamDecorator {
  return (target, key, index) => {
    Query(new ZodPipe(schema))(target, key, index);
    const descriptor = methodOf(target, key);
    const json = openApiSchemaOf(schema) as { properties?: Record<string, SchemaObject>; required?: string[] };
    for (const [name, property] of Object.entries(json.properties ?? {})) {
      const { description, ...rest } = property;
      ApiQuery({ name, required: json.required?.includes(name) ?? false, schema: rest, ...(description ? { description } : {}) })(target, key!, descriptor);
    }
  };
}

/** `@ZodBody(Schema) body`: the JSON body validated and documented by one schema. */
export function ZodBody<S extends z.ZodType>(schema: S): ParamDecorator {
  return (target, key, index) => {
    Body(new ZodPipe(schema, 'body'))(target, key, index);
    ApiBody({ schema: openApiSchemaOf(schema), required: true })(target, key!, methodOf(target, key));
  };
}

/** `@ZodParam('id', Schema) id`: a path parameter validated and documented by one schema. */
export function ZodParam<S extends z.ZodType>(name: string, schema: S): ParamDecorator {
  return (target, key, index) => {
    Param(name, new ZodPipe(schema, name))(target, key, index);
    const { description, ...rest } = openApiSchemaOf(schema);
    ApiParam({ name, required: true, schema: rest, ...(description ? { description } : {}) })(target, key!, methodOf(target, key));
  };
}
