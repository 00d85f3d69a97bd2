import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_SPECS, updateReadme } from '../scripts/config-table';

describe('README', () => {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

  it('starts with the two-command quickstart and the test command', () => {
    const quick = readme.slice(readme.indexOf('## Quickstart'));
    expect(quick.indexOf('npm install')).toBeLessThan(quick.indexOf('npm start'));
    expect(quick).toContain('npm test');
  });

  it('documents every configuration variable, exactly as the code validates them', () => {
    // The generated block must be current: regenerate with `npm run docs:config`.
    expect(updateReadme(readme)).toBe(readme);
    for (const [, spec] of CONFIG_SPECS) for (const f of Object.values(spec)) expect(readme).toContain(`\`${f.env}\``);
  });
});
