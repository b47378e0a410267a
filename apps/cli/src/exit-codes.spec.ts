import { ApiError, CliError } from './cli-error';
import { errorFrom } from './api-client';
import { ExitCode, exitCodeForStatus } from './exit-codes';

describe('exitCodeForStatus', () => {
  it.each([
    [400, ExitCode.Usage],
    [401, ExitCode.Auth],
    [403, ExitCode.Auth],
    [404, ExitCode.NotFound],
    [409, ExitCode.Conflict],
    [422, ExitCode.Conflict],
    [413, ExitCode.Failure],
    [500, ExitCode.Failure],
    [507, ExitCode.Failure],
    [502, ExitCode.Unreachable],
    [503, ExitCode.Unreachable],
  ])('HTTP %i exits %i', (status, code) => {
    expect(exitCodeForStatus(status)).toBe(code);
  });

  it('keeps the documented numbers (scripts depend on them)', () => {
    expect([
      ExitCode.Ok,
      ExitCode.Failure,
      ExitCode.Usage,
      ExitCode.Auth,
      ExitCode.NotFound,
      ExitCode.Conflict,
      ExitCode.Unreachable,
    ]).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
});

describe('errorFrom', () => {
  it("quotes the server's code, message and correlation id", () => {
    const error = errorFrom(
      404,
      'Not Found',
      JSON.stringify({ error: { code: 'NOT_FOUND', message: 'device gw-9 not found', correlationId: 'cli-abc' } }),
    );
    expect(error).toBeInstanceOf(ApiError);
    expect(error.exitCode).toBe(ExitCode.NotFound);
    expect(error.message).toBe('NOT_FOUND (HTTP 404): device gw-9 not found [correlation id cli-abc]');
  });

  it('keeps details (e.g. the offset of a resumable upload)', () => {
    const error = errorFrom(
      409,
      'Conflict',
      JSON.stringify({
        error: { code: 'CONFLICT', message: 'continues at byte 5', details: { offset: 5 }, correlationId: 'x' },
      }),
    ) as ApiError;
    expect(error.details).toEqual({ offset: 5 });
    expect(error.exitCode).toBe(ExitCode.Conflict);
  });

  it('copes with a body that is not the server error shape (a proxy page)', () => {
    const error = errorFrom(502, 'Bad Gateway', '<html>bad gateway</html>') as ApiError;
    expect(error.code).toBe('HTTP_502');
    expect(error.message).toContain('Bad Gateway');
    expect(error.exitCode).toBe(ExitCode.Unreachable);
  });

  it('usage and not-logged-in errors carry their exit codes', () => {
    expect(CliError.usage('x').exitCode).toBe(ExitCode.Usage);
    expect(CliError.notLoggedIn().exitCode).toBe(ExitCode.Auth);
    expect(CliError.unreachable('http://h', 'ECONNREFUSED').exitCode).toBe(ExitCode.Unreachable);
  });
});
