import type { Command } from 'commander';
import { z } from 'zod';
import { loadConfig } from '@shelfsight/common';
import { hubJson } from '../hub-client';
import { addConfigOptions, flagsFrom } from '../options';
import { HUB_TARGET_SPEC, printTable } from './samples';

const CategorySchema = z.object({ name: z.string(), displayName: z.string().nullable(), createdAt: z.string(), retiredAt: z.string().nullable(), active: z.boolean() });

/** `shelf categories list|add|retire`: the category catalogue labels must name. */
export function registerCategories(program: Command): void {
  const categories = program.command('categories').description('List, add and retire the product categories labels may name');

  const list = categories.command('list').description('Show every category, active or retired');
  addConfigOptions(list, HUB_TARGET_SPEC);
  list.action(async (opts: Record<string, unknown>) => {
    const c = loadConfig(HUB_TARGET_SPEC, flagsFrom(HUB_TARGET_SPEC, opts));
    const r = await hubJson(c, 'GET', '/categories', z.object({ items: z.array(CategorySchema) }));
    printTable(['name', 'state', 'since'], r.items.map((x) => [x.name, x.active ? 'active' : 'retired', (x.retiredAt ?? x.createdAt).slice(0, 19)]));
  });

  const add = categories.command('add <name>').description('Add a category (a new product line), or bring a retired one back');
  addConfigOptions(add, HUB_TARGET_SPEC);
  add.action(async (name: string, opts: Record<string, unknown>) => {
    const c = loadConfig(HUB_TARGET_SPEC, flagsFrom(HUB_TARGET_SPEC, opts));
    process.stdout.write(JSON.stringify(await hubJson(c, 'POST', '/categories', CategorySchema, { name })) + '\n');
  });

  const retire = categories.command('retire <name>').description('Retire a category: it keeps its history but takes no new labels');
  addConfigOptions(retire, HUB_TARGET_SPEC);
  retire.action(async (name: string, opts: Record<string, unknown>) => {
    const c = loadConfig(HUB_TARGET_SPEC, flagsFrom(HUB_TARGET_SPEC, opts));
    process.stdout.write(JSON.stringify(await hubJson(c, 'POST', `/categories/${encodeURIComponent(name)}/retire`, CategorySchema)) + '\n');
  });
}
