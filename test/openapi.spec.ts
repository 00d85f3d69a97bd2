import { readFileSync } from 'node:fs';
import { CONSOLE_API_TYPES, generateConsoleApiTypes } from '../scripts/openapi';

describe('console API client', () => {
  it('is generated from the hub as it is now (regenerate with `npm run openapi`)', async () => {
    const generated = await generateConsoleApiTypes();
    expect(readFileSync(CONSOLE_API_TYPES, 'utf8')).toBe(generated);
  });

  it('documents request shapes from the zod schemas that validate them', async () => {
    const generated = await generateConsoleApiTypes();
    // InventoryQuerySchema: zone's pattern, minConfidence's number, includeStale's enum, all optional.
    const counts = generated.slice(generated.indexOf('InventoryController_counts: {'));
    expect(counts.slice(0, 600)).toMatch(/includeStale\?: "0" \| "1" \| "true" \| "false";/);
    expect(counts.slice(0, 600)).toMatch(/minConfidence\?: number;/);
    // A body schema (training job request) reaches the client too.
    const start = generated.slice(generated.indexOf('TrainingController_start: {'));
    expect(start.slice(0, 1500)).toMatch(/requestBody: \{\s+content: \{\s+"application\/json": \{/);
  });
});
