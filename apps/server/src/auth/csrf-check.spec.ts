import { csrfProblem } from './csrf-check';
import { readCookie, sessionCookie } from './session-cookie';

const own = 'http://127.0.0.1:3000';
const base = { ownOrigin: own, origin: own, csrfHeader: 'csrf_abc' };

describe('csrfProblem', () => {
  it('lets safe methods through without any header', () => {
    expect(csrfProblem({ method: 'GET', ownOrigin: own }, 'csrf_abc')).toBeNull();
    expect(csrfProblem({ method: 'head', ownOrigin: own }, 'csrf_abc')).toBeNull();
  });

  it('needs the same origin and the session token on everything else', () => {
    expect(csrfProblem({ ...base, method: 'POST' }, 'csrf_abc')).toBeNull();
    expect(csrfProblem({ ...base, method: 'DELETE', origin: 'http://127.0.0.1:3001' }, 'csrf_abc')).toMatch(
      /not this server/,
    );
    expect(csrfProblem({ ...base, method: 'POST', origin: undefined }, 'csrf_abc')).toMatch(/needs an Origin/);
    expect(csrfProblem({ ...base, method: 'POST', csrfHeader: undefined }, 'csrf_abc')).toMatch(/missing/);
    expect(csrfProblem({ ...base, method: 'POST', csrfHeader: 'csrf_abd' }, 'csrf_abc')).toMatch(/wrong/);
    expect(csrfProblem({ ...base, method: 'POST', csrfHeader: 'csrf_ab' }, 'csrf_abc')).toMatch(/wrong/);
  });

  it('falls back to the Referer origin when a browser sends no Origin', () => {
    const request = { ...base, method: 'POST', origin: undefined };
    expect(csrfProblem({ ...request, referer: `${own}/rollouts/1` }, 'csrf_abc')).toBeNull();
    expect(csrfProblem({ ...request, referer: 'https://evil.example/x' }, 'csrf_abc')).toMatch(/not this server/);
    expect(csrfProblem({ ...request, referer: 'not a url' }, 'csrf_abc')).toMatch(/needs an Origin/);
  });
});

describe('session cookie', () => {
  it('reads one cookie among several and writes the strict attributes', () => {
    expect(readCookie('a=1; cowroot_session=cws_x; b=2', 'cowroot_session')).toBe('cws_x');
    expect(readCookie('cowroot_sessionx=1', 'cowroot_session')).toBeNull();
    expect(readCookie(undefined, 'cowroot_session')).toBeNull();
    expect(sessionCookie('v', 10.7, true)).toBe(
      'cowroot_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=10; Secure',
    );
    expect(sessionCookie('', -1, false)).toBe('cowroot_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
  });
});
