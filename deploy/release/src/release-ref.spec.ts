import { ReleaseError, ReleaseErrorCode } from './release-error';
import { ReleaseRefArg } from './release-ref';

describe(ReleaseRefArg.name, () => {
  it('parses name@version and names its snapshot and files', () => {
    const ref = ReleaseRefArg.parse('base@1.2.0+build.7');
    expect(ref).toMatchObject({ name: 'base', version: '1.2.0+build.7' });
    expect(ref.snapshotName).toBe('base-1.2.0+build.7');
    expect(ref.fileStem).toBe('base-1.2.0_build.7');
    expect(ref.toString()).toBe('base@1.2.0+build.7');
    expect(ref.equals(new ReleaseRefArg('base', '1.2.0+build.7'))).toBe(true);
    expect(ref.equals(new ReleaseRefArg('base', '1.2.0'))).toBe(false);
  });

  it.each(['base', 'base@', '@1.0', ''])('refuses %p with a hint at the syntax', (text) => {
    expect(() => ReleaseRefArg.parse(text)).toThrow(/write name@version/);
  });

  it.each([
    ['../etc', '1.0'],
    ['base', '../1'],
    ['base/x', '1.0'],
    ['base', '1..0'],
  ])('refuses names and versions that could leave the releases directory: %p@%p', (name, version) => {
    let error: unknown;
    try {
      new ReleaseRefArg(name, version);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ReleaseError);
    expect((error as ReleaseError).code).toBe(ReleaseErrorCode.InvalidArgument);
  });
});
