import { parseBootContext } from './boot-context';

describe(parseBootContext.name, () => {
  it('reads the snapshot and the trial flag', () => {
    expect(parseBootContext('console=ttyS0 root=/dev/vda2 cowroot.snapshot=rel-2.0 cowroot.trial=1 quiet\n')).toEqual({
      snapshot: 'rel-2.0',
      trial: true,
    });
    expect(parseBootContext('cowroot.snapshot=rel-1 cowroot.trial=0')).toEqual({ snapshot: 'rel-1', trial: false });
  });

  it('treats a missing or malformed parameter as absent', () => {
    expect(parseBootContext('console=ttyS0')).toEqual({ snapshot: null, trial: false });
    expect(parseBootContext('cowroot.snapshot=../etc cowroot.trial=yes')).toEqual({ snapshot: null, trial: false });
  });

  it('lets the last occurrence win, as the kernel does', () => {
    expect(parseBootContext('cowroot.snapshot=a cowroot.trial=1 cowroot.snapshot=b cowroot.trial=0')).toEqual({
      snapshot: 'b',
      trial: false,
    });
  });
});
