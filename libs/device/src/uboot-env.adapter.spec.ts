import { ENV } from './switch-protocol';
import { parsePrintenv, renderSetenvScript } from './uboot-env.adapter';

describe('u-boot env text', () => {
  it('parses fw_printenv output, unset names printed as "name=" reading as empty', () => {
    expect(parsePrintenv('bootdelay=2\ncowroot_current=rel-1\nnope=\n')).toEqual({
      bootdelay: '2',
      cowroot_current: 'rel-1',
      nope: '',
    });
  });

  it('keeps "=" inside values and continues multi-line values', () => {
    expect(parsePrintenv('bootargs=console=ttyS0 root=/dev/vda\nscript=echo a\necho b\n')).toEqual({
      bootargs: 'console=ttyS0 root=/dev/vda',
      script: 'echo a\necho b',
    });
  });

  it('renders one name=value line per variable, "name=" to delete', () => {
    expect(renderSetenvScript({ [ENV.trial]: 'rel-2', [ENV.state]: '' })).toBe('cowroot_trial=rel-2\ncowroot_state=\n');
    expect(renderSetenvScript({})).toBe('');
  });

  it('refuses names and values that would break the script format', () => {
    expect(() => renderSetenvScript({ 'a b': '1' })).toThrow(/name/);
    expect(() => renderSetenvScript({ a: 'x\nb=evil' })).toThrow(/newline/);
    expect(() => renderSetenvScript({ a: 'x'.repeat(2000) })).toThrow(/too long/);
  });
});
