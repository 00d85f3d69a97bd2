import { RequestMethod, type INestApplication, type Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { MetadataScanner, ModulesContainer } from '@nestjs/core';
import { PUBLIC_KEY, REQUIRED_ROLE_KEY, SCRAPE_TOKEN_KEY, type Role } from './roles';

/** One HTTP route of the app and its access rule. */
export interface RouteRule {
  method: string;
  /** Express-style pattern, e.g. `/devices/:id/credentials`. */
  path: string;
  /** `public`, the least role, or undefined when the route has no rule (a bug: it answers 500). */
  access: Role | 'public' | undefined;
  /** The route also admits METRICS_TOKEN. */
  scrapeToken: boolean;
  handler: string;
}

/**
 * Every HTTP route the app's controllers declare, with the rule the access guard applies
 * (handler metadata over controller metadata, as the guard reads it). MQTT handlers have no
 * HTTP path and are not listed.
 */
export function listRouteRules(app: INestApplication): RouteRule[] {
  const scanner = new MetadataScanner();
  const out: RouteRule[] = [];
  for (const mod of app.get(ModulesContainer).values()) {
    for (const wrapper of mod.controllers.values()) {
      const cls = wrapper.metatype as Type<unknown> | null;
      if (!cls || typeof cls !== 'function') continue;
      const base = pathsOf(Reflect.getMetadata(PATH_METADATA, cls));
      for (const name of scanner.getAllMethodNames(cls.prototype as object)) {
        const fn = (cls.prototype as Record<string, unknown>)[name] as object;
        const sub = Reflect.getMetadata(PATH_METADATA, fn) as string | string[] | undefined;
        const method = Reflect.getMetadata(METHOD_METADATA, fn) as RequestMethod | undefined;
        if (sub === undefined || method === undefined) continue;
        const meta = <T>(key: string): T | undefined => (Reflect.getMetadata(key, fn) ?? Reflect.getMetadata(key, cls)) as T | undefined;
        const access = meta<boolean>(PUBLIC_KEY) ? 'public' : meta<Role>(REQUIRED_ROLE_KEY);
        for (const b of base) {
          for (const s of pathsOf(sub)) {
            out.push({ method: RequestMethod[method], path: joinPath(b, s), access, scrapeToken: meta<boolean>(SCRAPE_TOKEN_KEY) === true, handler: `${cls.name}.${name}` });
          }
        }
      }
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
}

function pathsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  return [typeof value === 'string' ? value : '/'];
}

function joinPath(a: string, b: string): string {
  const joined = `/${[a, b].map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/')}`;
  return joined;
}
