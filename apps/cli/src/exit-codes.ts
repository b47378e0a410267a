/**
 * Exit codes scripts can rely on (docs/cli.md §Exit codes). Never renumber: add new codes at the end.
 */
export enum ExitCode {
  Ok = 0,
  /** anything not covered below: server 5xx, local I/O errors, bugs */
  Failure = 1,
  /** bad arguments or options, including requests the server rejects as malformed (HTTP 400) */
  Usage = 2,
  /** not logged in, unknown/revoked token (401) or a role too weak for the action (403) */
  Auth = 3,
  /** the device, release, rollout… does not exist (404) */
  NotFound = 4,
  /** conflict or invalid state: already exists, wrong state for that action, signature refused (409/422) */
  Conflict = 5,
  /** the server cannot be reached: connection refused, DNS, TLS, timeout */
  Unreachable = 6,
}

/** The exit code for an HTTP error status from the server. */
export function exitCodeForStatus(status: number): ExitCode {
  switch (status) {
    case 400:
      return ExitCode.Usage;
    case 401:
    case 403:
      return ExitCode.Auth;
    case 404:
    case 410:
      return ExitCode.NotFound;
    case 409:
    case 412:
    case 422:
      return ExitCode.Conflict;
    case 502:
    case 503:
    case 504:
      // a proxy in front of a server that is down: the same situation as a refused connection
      return ExitCode.Unreachable;
    default:
      return ExitCode.Failure;
  }
}
