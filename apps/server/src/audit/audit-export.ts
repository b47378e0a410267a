import { AuditEntryDto } from './dto/audit-entry.dto';

export const AUDIT_CSV_COLUMNS: (keyof AuditEntryDto)[] = [
  'id',
  'at',
  'actorType',
  'actorId',
  'actorName',
  'action',
  'subjectType',
  'subjectId',
  'before',
  'after',
  'reason',
  'correlationId',
];

/** RFC 4180 quoting; cells that a spreadsheet would run as a formula get a leading quote. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvRow(entry: AuditEntryDto): string {
  return AUDIT_CSV_COLUMNS.map((column) => csvCell(entry[column])).join(',') + '\r\n';
}

export const AUDIT_CSV_HEADER = AUDIT_CSV_COLUMNS.join(',') + '\r\n';
