import type { Schemas } from '@cowroot/api-client';
import { ExitCode, exitCodeForStatus } from './exit-codes';

/** An error the CLI reports as one line on stderr and turns into its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.Failure,
  ) {
    super(message);
    this.name = 'CliError';
  }

  static usage(message: string): CliError {
    return new CliError(message, ExitCode.Usage);
  }

  static notLoggedIn(): CliError {
    return new CliError(
      'not logged in: run `cowroot login --server <url> --token <token>` (or set COWROOT_SERVER and COWROOT_TOKEN)',
      ExitCode.Auth,
    );
  }

  static unreachable(server: string, cause: string): CliError {
    return new CliError(`cannot reach the server at ${server}: ${cause}`, ExitCode.Unreachable);
  }

  /** An error answer of the server: `{ error: { code, message, details?, correlationId } }`. */
  static fromApi(status: number, body: ApiErrorBody | null, statusText: string): ApiError {
    return new ApiError(
      status,
      body?.code ?? `HTTP_${status}`,
      body?.message ?? (statusText || `HTTP ${status}`),
      body?.correlationId ?? null,
      body?.details,
    );
  }
}

/** The server's error body (ErrorBodyDto), every field optional: a proxy may answer something else. */
export type ApiErrorBody = Partial<Schemas['ErrorBodyDto']>;

/** The server answered with an error: its code, message and correlation id are quoted to the user. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly correlationId: string | null,
    readonly details?: unknown,
  ) {
    super(
      `${code} (HTTP ${status}): ${serverMessage}${correlationId ? ` [correlation id ${correlationId}]` : ''}`,
      exitCodeForStatus(status),
    );
    this.name = 'ApiError';
  }
}
