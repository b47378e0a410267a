import { createAccount, createOperator, createUser, decode, encodeUser, fromPublic } from '@nats-io/jwt';
import { nativeSigningKey, nativeUserPublicKey } from './native-signing-key';

describe(nativeSigningKey.name, () => {
  it('signs byte for byte as the nkeys.js key of the same seed, for any key type', () => {
    for (const kp of [createAccount(), createOperator(), createUser()]) {
      const native = nativeSigningKey(new TextDecoder().decode(kp.getSeed()));
      expect(native.getPublicKey()).toBe(kp.getPublicKey());
      for (const input of ['', 'a', 'x'.repeat(1000)].map((s) => new TextEncoder().encode(s))) {
        expect(Buffer.from(native.sign(input)).toString('hex')).toBe(Buffer.from(kp.sign(input)).toString('hex'));
        expect(kp.verify(input, native.sign(input))).toBe(true);
      }
    }
  });

  it('issues a user JWT that the account key verifies', async () => {
    const account = createAccount();
    const native = nativeSigningKey(new TextDecoder().decode(account.getSeed()));
    const user = createUser();
    const jwt = await encodeUser('device-x', user.getPublicKey(), native, { bearer_token: true });
    const claims = decode<{ bearer_token: boolean }>(jwt);
    expect(claims).toMatchObject({ iss: account.getPublicKey(), sub: user.getPublicKey() });
    const [header, payload, signature] = jwt.split('.');
    expect(account.verify(new TextEncoder().encode(`${header}.${payload}`), Buffer.from(signature, 'base64url'))).toBe(
      true,
    );
  });

  it('makes user public keys nkeys.js accepts (prefix U, checksum), each one new', () => {
    const keys = Array.from({ length: 50 }, () => nativeUserPublicKey());
    for (const key of keys) {
      expect(key).toMatch(/^U[A-Z2-7]{55}$/);
      expect(fromPublic(key).getPublicKey()).toBe(key);
    }
    expect(new Set(keys).size).toBe(keys.length);
    // a flipped character breaks the checksum: the check above can fail
    const broken = keys[0].slice(0, 10) + (keys[0][10] === 'A' ? 'B' : 'A') + keys[0].slice(11);
    expect(() => fromPublic(broken)).toThrow();
  });

  it('refuses what is not a seed', () => {
    expect(() => nativeSigningKey('not-a-seed!')).toThrow();
  });
});
