/** `npm run config:docs`: rewrite `.env.example` and `docs/configuration.md` from the schema. */
import { writeFileSync } from 'node:fs';
import { renderConfigDoc, renderEnvExample } from './reference.ts';

writeFileSync(new URL('../../.env.example', import.meta.url), renderEnvExample());
writeFileSync(new URL('../../docs/configuration.md', import.meta.url), renderConfigDoc());
process.stdout.write('wrote .env.example and docs/configuration.md\n');
