import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(__dirname, '../..');
const GENERATED = ['libs/api-client/openapi.json', 'libs/api-client/src/schema.ts'].map((file) => join(ROOT, file));

// docs/api.md §Changing the API tells people to run `npm run api:generate`: run exactly that, and hold its
// output to what is committed. A stale file is put back as it was (the test must not edit the tree) and the
// test fails; apps/server/src/openapi/openapi-document.spec.ts says the same faster, without a build.
describe('npm run api:generate', () => {
  it('regenerates exactly the committed document and types', async () => {
    const before = await Promise.all(GENERATED.map((file) => readFile(file, 'utf8')));
    try {
      await promisify(execFile)('npm', ['run', 'api:generate'], {
        cwd: ROOT,
        maxBuffer: 16 * 1024 * 1024,
      });
      const after = await Promise.all(GENERATED.map((file) => readFile(file, 'utf8')));
      const stale = GENERATED.filter((_, index) => after[index] !== before[index]);
      expect(stale).toEqual([]);
    } finally {
      await Promise.all(GENERATED.map((file, index) => writeFile(file, before[index])));
    }
  }, 300_000);
});
