import { writeFile } from 'node:fs/promises';
import { previewOpenApiDocument } from './openapi-document';

/** The committed form of the document: stable key order as Nest builds it, 2-space JSON, final newline. */
export function serializeOpenApiDocument(document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** `node dist/apps/server/src/openapi/write-openapi.js <out.json>`: step one of `npm run api:generate`. */
async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: write-openapi <out.json>');
  await writeFile(out, serializeOpenApiDocument(await previewOpenApiDocument()));
  console.error(`wrote ${out}`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error((error as Error).stack ?? String(error));
    process.exit(1);
  });
}
