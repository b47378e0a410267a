import { randomBytes } from 'node:crypto';
import { credentialEntropyBits, givenCredentialProblem, MIN_CREDENTIAL_ENTROPY_BITS } from './device-rules';
import { parseBulkCsv, parseBulkJson, splitCsv } from './bulk-device-list';

const credential = 'factory-secret-0123456789abcdef';

describe('splitCsv', () => {
  it('handles quotes, escaped quotes, CRLF, a BOM and blank lines, with the line each record starts on', () => {
    const { records, error } = splitCsv('\ufeffid,tags\r\n\r\n"a,1","x;""y"""\n"multi\nline",z\n');
    expect(error).toBeUndefined();
    expect(records).toEqual([
      { line: 1, fields: ['id', 'tags'] },
      { line: 3, fields: ['a,1', 'x;"y"'] },
      { line: 4, fields: ['multi\nline', 'z'] },
    ]);
  });

  it('reports an unterminated quote', () => {
    expect(splitCsv('id\n"open\n').error).toEqual({ line: 2, reason: 'unterminated quoted field' });
  });

  it('keeps empty fields and a last line without newline', () => {
    expect(splitCsv('a,,b').records).toEqual([{ line: 1, fields: ['a', '', 'b'] }]);
  });
});

describe('parseBulkCsv', () => {
  it('reads ids, ;-separated tags and optional credentials', () => {
    const list = parseBulkCsv(`id,tags,credential\ndev-1,canary;site=berlin,${credential}\ndev-2,,\n`);
    expect(list.errors).toEqual([]);
    expect(list.rows).toEqual([
      { line: 2, id: 'dev-1', tags: ['canary', 'site=berlin'], credential },
      { line: 3, id: 'dev-2', tags: [], credential: undefined },
    ]);
  });

  it('accepts columns in any order and without the optional ones', () => {
    expect(parseBulkCsv('tags,id\nx,dev-1\n').rows).toEqual([
      { line: 2, id: 'dev-1', tags: ['x'], credential: undefined },
    ]);
  });

  it('lists every bad row with its line and reason', () => {
    const list = parseBulkCsv(
      ['id,tags,credential', 'ok-1,a,', 'bad/id,a,', 'ok-2,bad tag,', 'ok-3,a,short', 'ok-1,a,', 'ok-4,a'].join('\n'),
    );
    expect(list.rows.map((row) => row.id)).toEqual(['ok-1']);
    expect(list.errors).toEqual([
      { line: 3, id: 'bad/id', reason: expect.stringMatching(/invalid device id/) },
      { line: 4, id: 'ok-2', reason: expect.stringMatching(/invalid tag/) },
      { line: 5, id: 'ok-3', reason: expect.stringMatching(/credential/) },
      { line: 6, id: 'ok-1', reason: 'duplicate of line 2' },
      { line: 7, reason: 'expected 3 fields, got 2' },
    ]);
  });

  it('refuses guessable factory credentials by the stated entropy rule, and takes random ones', () => {
    for (const weak of ['aaaaaaaaaaaaaaaaaaaaaaaa', 'password1234password1234', '111111111111222222222222']) {
      expect(credentialEntropyBits(weak)).toBeLessThan(MIN_CREDENTIAL_ENTROPY_BITS);
      expect(givenCredentialProblem(weak)).toMatch(/too guessable/);
    }
    for (let i = 0; i < 1000; i++) {
      expect(givenCredentialProblem(randomBytes(12).toString('hex'))).toBeNull();
      expect(givenCredentialProblem(randomBytes(18).toString('base64url'))).toBeNull();
    }
    const list = parseBulkJson({ devices: [{ id: 'weak-1', credential: 'abcabcabcabcabcabcabcabc' }] });
    expect(list.errors).toEqual([{ line: 1, id: 'weak-1', reason: expect.stringMatching(/too guessable/) }]);
  });

  it('refuses a missing or unknown header', () => {
    expect(parseBulkCsv('name,tags\nx,y\n').errors[0]).toMatchObject({
      line: 1,
      reason: expect.stringMatching(/header/),
    });
    expect(parseBulkCsv('').errors[0].reason).toMatch(/empty/);
    expect(parseBulkCsv('id\n').errors[0].reason).toMatch(/no devices/);
  });
});

describe('parseBulkJson', () => {
  it('reads the list and numbers rows from 1', () => {
    const list = parseBulkJson({
      devices: [
        { id: 'a', tags: ['x', 'x'] },
        { id: 'b', credential },
      ],
    });
    expect(list.errors).toEqual([]);
    expect(list.rows).toEqual([
      { line: 1, id: 'a', tags: ['x'], credential: undefined },
      { line: 2, id: 'b', tags: [], credential },
    ]);
  });

  it('reports wrong shapes per row', () => {
    const list = parseBulkJson({ devices: [{ id: 1 }, 'x', { id: 'c', tags: 'x' }, { id: 'd', role: 'admin' }] });
    expect(list.errors.map((error) => [error.line, error.reason])).toEqual([
      [1, 'id must be a string'],
      [2, 'must be an object'],
      [3, 'tags must be a list of strings'],
      [4, 'unknown field(s) role'],
    ]);
    expect(parseBulkJson([{ id: 'a' }]).errors[0].reason).toMatch(/devices/);
  });
});
