import { deviceIdProblem, givenCredentialProblem, normaliseTags, tagProblem } from './device-rules';

/** One device of a bulk provisioning request. `line` = CSV line, or 1-based position in a JSON list. */
export interface BulkDeviceRow {
  line: number;
  id: string;
  tags: string[];
  credential?: string;
}

export interface BulkRowError {
  line: number;
  id?: string;
  reason: string;
}

export interface BulkDeviceList {
  rows: BulkDeviceRow[];
  errors: BulkRowError[];
}

export const BULK_MAX_DEVICES = 10_000;
const CSV_COLUMNS = ['id', 'tags', 'credential'] as const;

interface CsvRecord {
  line: number;
  fields: string[];
}

/** RFC 4180 records: `,` separated, `"` quoted with `""` escapes, CRLF or LF; blank lines are skipped. */
export function splitCsv(text: string): { records: CsvRecord[]; error?: BulkRowError } {
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let atFieldStart = true;
  let recordEmpty = true;
  let line = 1;
  let recordLine = 1;
  const endRecord = () => {
    fields.push(field);
    if (!recordEmpty) records.push({ line: recordLine, fields });
    fields = [];
    field = '';
    atFieldStart = true;
    recordEmpty = true;
  };
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (quoted) {
      if (c === '"' && body[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && body[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
      continue;
    } else {
      recordEmpty = recordEmpty && c.trim() === '';
      if (c === '"' && atFieldStart) {
        quoted = true;
        recordEmpty = false;
      } else if (c === ',') {
        fields.push(field);
        field = '';
        recordEmpty = false;
        atFieldStart = true;
        continue;
      } else {
        field += c;
      }
    }
    atFieldStart = false;
  }
  if (quoted) return { records, error: { line: recordLine, reason: 'unterminated quoted field' } };
  if (!recordEmpty) endRecord();
  return { records };
}

/** Parses the CSV form: header `id,tags,credential` (tags and credential optional), tags separated by `;`. */
export function parseBulkCsv(text: string): BulkDeviceList {
  const { records, error } = splitCsv(text);
  if (error) return { rows: [], errors: [error] };
  if (records.length === 0)
    return { rows: [], errors: [{ line: 1, reason: 'empty file: expected a header id,tags,credential' }] };
  const [header, ...data] = records;
  const columns = header.fields.map((name) => name.trim().toLowerCase());
  const unknown = columns.filter((name) => !(CSV_COLUMNS as readonly string[]).includes(name));
  if (!columns.includes('id') || unknown.length > 0 || new Set(columns).size !== columns.length) {
    return {
      rows: [],
      errors: [
        { line: header.line, reason: `header must name the columns id, tags, credential (got ${columns.join(',')})` },
      ],
    };
  }
  const plain = data.map((record) => {
    if (record.fields.length !== columns.length) {
      return { line: record.line, problem: `expected ${columns.length} fields, got ${record.fields.length}` };
    }
    const value = (name: string) => {
      const index = columns.indexOf(name);
      return index < 0 ? '' : record.fields[index].trim();
    };
    const tags = value('tags')
      .split(';')
      .map((tag) => tag.trim())
      .filter((tag) => tag !== '');
    const credential = value('credential');
    return { line: record.line, id: value('id'), tags, credential: credential === '' ? undefined : credential };
  });
  return checkRows(plain);
}

/** Parses the JSON form `{ devices: [{ id, tags?, credential? }] }`. */
export function parseBulkJson(body: unknown): BulkDeviceList {
  const list = typeof body === 'object' && body !== null ? (body as { devices?: unknown }).devices : undefined;
  if (!Array.isArray(list)) return { rows: [], errors: [{ line: 0, reason: 'body must be { "devices": [ ... ] }' }] };
  const plain = list.map((item: unknown, index) => {
    const line = index + 1;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return { line, problem: 'must be an object' };
    const { id, tags, credential, ...rest } = item as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) return { line, problem: `unknown field(s) ${extra.join(', ')}` };
    if (typeof id !== 'string') return { line, problem: 'id must be a string' };
    if (tags !== undefined && !(Array.isArray(tags) && tags.every((tag) => typeof tag === 'string'))) {
      return { line, id, problem: 'tags must be a list of strings' };
    }
    if (credential !== undefined && typeof credential !== 'string')
      return { line, id, problem: 'credential must be a string' };
    return { line, id, tags: (tags as string[] | undefined) ?? [], credential };
  });
  return checkRows(plain);
}

type PlainRow =
  | { line: number; id: string; tags: string[]; credential?: string; problem?: undefined }
  | { line: number; id?: string; problem: string };

/** The checks both forms share: ids, tags, credentials, duplicates and the size of the list. */
function checkRows(plain: PlainRow[]): BulkDeviceList {
  const rows: BulkDeviceRow[] = [];
  const errors: BulkRowError[] = [];
  if (plain.length === 0) errors.push({ line: 0, reason: 'no devices given' });
  if (plain.length > BULK_MAX_DEVICES) {
    errors.push({ line: 0, reason: `at most ${BULK_MAX_DEVICES} devices per request (got ${plain.length})` });
    return { rows, errors };
  }
  const firstLineOf = new Map<string, number>();
  for (const row of plain) {
    if (row.problem !== undefined) {
      errors.push({ line: row.line, id: row.id, reason: row.problem });
      continue;
    }
    const problem =
      deviceIdProblem(row.id) ??
      tagProblem(row.tags) ??
      (row.credential !== undefined ? givenCredentialProblem(row.credential) : null);
    const earlier = firstLineOf.get(row.id);
    if (problem) {
      errors.push({ line: row.line, id: row.id, reason: problem });
    } else if (earlier !== undefined) {
      errors.push({ line: row.line, id: row.id, reason: `duplicate of line ${earlier}` });
    } else {
      firstLineOf.set(row.id, row.line);
      rows.push({ line: row.line, id: row.id, tags: normaliseTags(row.tags), credential: row.credential });
    }
  }
  return { rows, errors };
}
