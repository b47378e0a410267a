import { Command } from 'commander';
import { ApiClient } from '../api-client';
import { ApiError, CliError } from '../cli-error';
import { CliContext } from '../cli-context';
import { normaliseServerUrl } from '../config-store';
import { ExitCode } from '../exit-codes';

/**
 * `cowroot login --server <url> --token <token>`: checks the token against the API, then stores both.
 * The server has no "who am I" endpoint yet, so the check is the cheapest read every role may do
 * (one audit entry); a refused token is never stored.
 */
export function registerLoginCommand(program: Command, context: CliContext): void {
  program
    .command('login')
    .description('check an API token against the server and store server + token in the config file (mode 0600)')
    .requiredOption('--server <url>', 'server base URL, e.g. https://cowroot.example.com')
    .requiredOption('--token <token>', 'API token (create one with POST /api/v1/tokens)')
    .action(async (options: { server: string; token: string }, command: Command) => {
      const server = normaliseServerUrl(options.server);
      const token = options.token.trim();
      if (!token) throw CliError.usage('--token is empty');
      const client = new ApiClient(server, token, context.requestId);
      try {
        await client.call(client.api.GET('/api/v1/audit', { params: { query: { limit: 1 } } }));
      } catch (error) {
        if (error instanceof ApiError && error.exitCode === ExitCode.Auth) {
          throw new ApiError(
            error.status,
            error.code,
            `token refused by ${server}: ${error.serverMessage}`,
            error.correlationId,
            error.details,
          );
        }
        throw error;
      }
      await context.config.write({ server, token });
      if (context.json(command)) context.printJson({ server, config: context.config.path });
      else context.out(`logged in to ${server} (token stored in ${context.config.path})`);
    });
}
