import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACKNOWLEDGED_REJECTIONS, ErrorCode, RejectionReason, rejectionForParseError } from './index';

/** docs/protocol.md §7.1 and the enum are one list: a reason added to one and not the other fails here. */
describe('RejectionReason', () => {
  const doc = readFileSync(join(__dirname, '../../../docs/protocol.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### 7.1 Rejected messages'), doc.indexOf('## 8.'));
  const rows = [...section.matchAll(/^\| `([A-Z_]+)` \| [^|]+ \| (stays, notified|closed) \|$/gm)];

  it('has exactly the reasons of the docs table, in its order', () => {
    expect(rows.map((row) => row[1])).toEqual(Object.values(RejectionReason));
  });

  it('says in the docs which reasons keep the connection', () => {
    const stays = rows.filter((row) => row[2] === 'stays, notified').map((row) => row[1]);
    expect(stays).toEqual(ACKNOWLEDGED_REJECTIONS);
  });

  it('maps the parser error codes onto reasons of the same name', () => {
    for (const code of [ErrorCode.MalformedMessage, ErrorCode.MessageTooLarge, ErrorCode.UnsupportedProtocolVersion]) {
      expect(rejectionForParseError(code)).toBe(code);
    }
    expect(rejectionForParseError(ErrorCode.UnknownCommand)).toBe(RejectionReason.MalformedMessage);
  });
});
