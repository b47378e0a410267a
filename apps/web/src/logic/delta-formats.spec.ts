import { artifactDeltaFormat, deviceDeltaFormats } from './delta-formats';

describe('delta formats (issue 14)', () => {
  it('shows the formats a device reported, in order, and an empty report as none', () => {
    expect(deviceDeltaFormats([3, 1, 2])).toBe('1, 2, 3');
    expect(deviceDeltaFormats([1])).toBe('1');
    expect(deviceDeltaFormats([])).toBe('none');
  });

  it('says when a device never reported them and what the server then assumes (format 1 only)', () => {
    expect(deviceDeltaFormats(null)).toBe('never reported: the server assumes format 1 only');
  });

  it("shows a delta artifact's format, unspecified for an old manifest, and nothing for other kinds", () => {
    expect(artifactDeltaFormat({ kind: 'delta', deltaFormat: 3 })).toBe('3');
    expect(artifactDeltaFormat({ kind: 'delta', deltaFormat: null })).toBe('unspecified');
    expect(artifactDeltaFormat({ kind: 'full', deltaFormat: null })).toBe('–');
    expect(artifactDeltaFormat({ kind: 'incremental', deltaFormat: null })).toBe('–');
  });
});
