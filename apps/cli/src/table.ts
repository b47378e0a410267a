/** One column of a table: header, how to get the cell text, and alignment. */
export interface Column<T> {
  header: string;
  value: (row: T) => string | number | boolean | null | undefined;
  align?: 'left' | 'right';
}

/** Text of a cell: empty cells show as "-" so columns never look shifted. */
export function cellText(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined || value === '') return '-';
  // a newline or tab inside a cell would break the alignment of every following row
  return String(value).replace(/[\r\n\t]+/g, ' ');
}

/** Display width: counts code points (not UTF-16 units) so an "ü" or emoji does not misalign a column. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    // combining marks take no column
    if (code >= 0x300 && code <= 0x36f) continue;
    width++;
  }
  return width;
}

function pad(text: string, width: number, align: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(text)));
  return align === 'right' ? fill + text : text + fill;
}

/**
 * Aligned plain-text table: a header row, then one line per row, columns separated by two spaces, no
 * trailing whitespace. Returns the lines without a final newline.
 */
export function formatTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((row) => columns.map((column) => cellText(column.value(row))));
  const widths = columns.map((column, index) =>
    Math.max(displayWidth(column.header), ...cells.map((line) => displayWidth(line[index]))),
  );
  const render = (line: string[]) =>
    line
      .map((text, index) => pad(text, widths[index], columns[index].align ?? 'left'))
      .join('  ')
      .trimEnd();
  return [render(columns.map((column) => column.header.toUpperCase())), ...cells.map(render)].join('\n');
}

/** "key: value" lines with the keys padded to one width, for a single object. */
export function formatKeyValues(
  entries: readonly (readonly [string, string | number | boolean | null | undefined])[],
): string {
  const width = Math.max(0, ...entries.map(([key]) => displayWidth(key)));
  return entries.map(([key, value]) => `${pad(`${key}:`, width + 1, 'left')} ${cellText(value)}`.trimEnd()).join('\n');
}
