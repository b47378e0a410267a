import { Command } from 'commander';
import { CommandRunner } from '@cowroot/device';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { ReleaseRefArg } from '../release-ref';
import { StreamSigner } from './stream-signer.service';

interface SignOptions {
  stream: string;
  delta: string[];
  name: string;
  version: string;
  key: string;
  out: string;
  description?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `<name@version>=<file>` of --delta. */
function parseDelta(text: string): { parent: ReleaseRefArg; stream: string } {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `--delta ${JSON.stringify(text)} must be <parent name@version>=<stream file>`,
    );
  }
  return { parent: ReleaseRefArg.parse(text.slice(0, at)), stream: text.slice(at + 1) };
}

/** `cowroot-release sign` (docs/factory.md "Streams from your own build system"). */
export function registerSignCommand(root: Command, out: (line: string) => void): void {
  root
    .command('sign')
    .description('check btrfs send streams another build system made and write their signed manifests and release.json')
    .requiredOption('--stream <file>', 'the full send stream (btrfs send output, plain or zstd)')
    .option(
      '--delta <parent=file>',
      'an incremental stream and the release it applies to: name@version=file (repeatable)',
      collect,
      [],
    )
    .requiredOption('--name <name>', 'release name')
    .requiredOption('--version <version>', 'release version')
    .requiredOption('--key <file>', 'ed25519 private key (PEM) that signs the manifests')
    .requiredOption('--out <dir>', 'directory for the artifacts, manifests, signatures and release.json')
    .option('--description <text>', 'free text carried in the manifests and release.json')
    .action(async (options: SignOptions) => {
      const signer = new StreamSigner(new CommandRunner(), out);
      const result = await signer.sign({
        release: new ReleaseRefArg(options.name, options.version),
        keyPath: options.key,
        outDir: options.out,
        full: options.stream,
        deltas: options.delta.map(parseDelta),
        description: options.description,
      });
      out(`release ${result.index.name}@${result.index.version}: ${result.indexPath}`);
    });
}
