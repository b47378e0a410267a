import { cellText, displayWidth, formatKeyValues, formatTable } from './table';

describe('formatTable', () => {
  const rows = [
    { id: 'gw-1', size: 5, tags: ['canary'] },
    { id: 'gateway-0042', size: 1234, tags: [] as string[] },
  ];
  const columns = [
    { header: 'id', value: (r: (typeof rows)[number]) => r.id },
    { header: 'size', value: (r: (typeof rows)[number]) => r.size, align: 'right' as const },
    { header: 'tags', value: (r: (typeof rows)[number]) => r.tags.join(',') },
  ];

  it('aligns columns under upper-case headers, two spaces apart, without trailing blanks', () => {
    expect(formatTable(columns, rows).split('\n')).toEqual([
      'ID            SIZE  TAGS',
      'gw-1             5  canary',
      'gateway-0042  1234  -',
    ]);
  });

  it('prints only the header for no rows', () => {
    expect(formatTable(columns, [])).toBe('ID  SIZE  TAGS');
  });

  it('counts code points, so accented and astral characters do not shift columns', () => {
    const table = formatTable(
      [
        { header: 'name', value: (r: { n: string }) => r.n },
        { header: 'x', value: () => 'x' },
      ],
      [{ n: 'Zürich' }, { n: '😀' }, { n: 'abcdef' }],
    );
    const positions = table.split('\n').map((line) => displayWidth(line.slice(0, line.lastIndexOf('x') + 1)));
    expect(new Set(positions.slice(1)).size).toBe(1);
  });

  it('flattens newlines and tabs inside cells so a row stays one line', () => {
    expect(cellText('a\nb\tc')).toBe('a b c');
    expect(
      formatTable([{ header: 'reason', value: (r: { r: string }) => r.r }], [{ r: 'line1\r\nline2' }]).split('\n'),
    ).toHaveLength(2);
  });

  it('shows empty, null and undefined cells as "-"', () => {
    expect([cellText(''), cellText(null), cellText(undefined), cellText(0), cellText(false)]).toEqual([
      '-',
      '-',
      '-',
      '0',
      'false',
    ]);
  });
});

describe('formatKeyValues', () => {
  it('pads keys to one width', () => {
    expect(
      formatKeyValues([
        ['id', 'gw-1'],
        ['last seen', null],
      ]).split('\n'),
    ).toEqual(['id:        gw-1', 'last seen: -']);
  });
});
