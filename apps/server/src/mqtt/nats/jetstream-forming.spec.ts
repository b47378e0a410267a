import { isJetStreamForming, whileJetStreamForms } from './jetstream-forming';

describe(whileJetStreamForms.name, () => {
  it('tells a forming cluster from a real refusal', () => {
    expect(isJetStreamForming(Object.assign(new Error('503'), { code: '503' }))).toBe(true);
    expect(isJetStreamForming(new Error('insufficient resources: no suitable peers for placement'))).toBe(true);
    expect(isJetStreamForming(new Error('stream name already in use with a different configuration'))).toBe(false);
    expect(isJetStreamForming(new Error('Authorization Violation'))).toBe(false);
  });

  it('retries while forming, and gives up on anything else at once', async () => {
    const warnings: string[] = [];
    let calls = 0;
    const formed = await whileJetStreamForms(
      'stream',
      async () => {
        calls += 1;
        if (calls < 2) throw Object.assign(new Error('503'), { code: '503' });
        return 'ok';
      },
      (message) => warnings.push(message),
    );
    expect([formed, calls, warnings.length]).toEqual(['ok', 2, 1]);
    await expect(
      whileJetStreamForms(
        'stream',
        () => Promise.reject(new Error('Authorization Violation')),
        () => undefined,
      ),
    ).rejects.toThrow('Authorization Violation');
    await expect(
      whileJetStreamForms(
        'stream',
        () => Promise.reject(new Error('503')),
        () => undefined,
        0,
      ),
    ).rejects.toThrow('503');
  });
});
