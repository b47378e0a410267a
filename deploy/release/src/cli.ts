import { CommandRunner } from '@cowroot/device';
import { Command, CommanderError, Option } from 'commander';
import { MAX_SECURITY_VERSION } from '@cowroot/protocol';
import { registerImageCommand } from './image/image-cli';
import { registerSignCommand } from './sign/sign-cli';
import { ARCHES, Arch } from './kernel-images.service';
import { ReleaseBuildService } from './release-build.service';
import { ReleaseError, ReleaseErrorCode, asReleaseError } from './release-error';
import { ReleaseRefArg } from './release-ref';
import { ReleaseVerifier } from './release-verifier.service';
import { SigningKeys } from './signing-keys';
import { readFleetBases } from './delta/fleet-bases';

export interface CliOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

const processOutput: CliOutput = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

interface BuildOptions {
  rootfs: string;
  pool: string;
  name: string;
  version: string;
  description?: string;
  key: string;
  out: string;
  base?: string;
  deltaFrom: string[];
  arch: Arch;
  kernel?: string;
  initrd?: string;
  loadAddress?: string;
  entryPoint?: string;
  zstdLevel: string;
  securityVersion?: string;
  allowRollbackFrom?: string;
  binaryDelta?: boolean;
  deltaWindowLog: string;
  deltaFromFleet?: string;
  deltaFormat: string;
}

/** A security version option (docs/release-tool.md, downgrade protection): an integer 0 … 2^31-1. */
function securityNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > MAX_SECURITY_VERSION) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `${flag} must be an integer 0-${MAX_SECURITY_VERSION}, got ${value}`,
    );
  }
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function program(output: CliOutput): Command {
  const root = new Command('cowroot-release')
    .description('Build signed cowroot releases (btrfs send streams with u-boot boot images) on a build host.')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out(text.trimEnd()),
      writeErr: (text) => output.err(text.trimEnd()),
    });

  root
    .command('keygen')
    .description('create an ed25519 key pair: <prefix>.key (private, mode 0600) and <prefix>.pub')
    .requiredOption('--out <prefix>', 'path prefix of the two files')
    .action(async (options: { out: string }) => {
      const files = await SigningKeys.generate(options.out);
      output.out(`private key ${files.privateKey} (keep it secret, mode 0600)`);
      output.out(`public key  ${files.publicKey} (give it to the server and devices)`);
    });

  root
    .command('build')
    .description(
      'build a release from a rootfs directory into <pool>/releases/<name>-<version> and write its artifacts',
    )
    .requiredOption('--rootfs <dir>', 'the rootfs directory')
    .requiredOption('--pool <path>', 'mounted btrfs path holding releases/')
    .requiredOption('--name <name>', 'release name')
    .requiredOption('--version <version>', 'release version')
    .requiredOption('--key <file>', 'ed25519 private key (PEM) that signs the manifests')
    .requiredOption('--out <dir>', 'directory for the artifacts, manifests, signatures and release.json')
    .addOption(
      new Option('--arch <arch>', 'architecture written into the u-boot images').choices(ARCHES).makeOptionMandatory(),
    )
    .option('--description <text>', 'free text carried in the manifests and release.json')
    .option('--base <name@version>', 'start from this release (writable snapshot) so unchanged files stay shared')
    .option(
      '--delta-from <name@version>',
      'also write an incremental stream against this ancestor (repeatable)',
      collect,
      [],
    )
    .option('--kernel <file>', 'kernel to wrap instead of the one in the rootfs /boot')
    .option('--initrd <file>', 'initrd to wrap instead of the one in the rootfs /boot')
    .option(
      '--load-address <hex>',
      'copy the kernel there at boot (required for arm64; default: run it where u-boot loaded it)',
    )
    .option('--entry-point <hex>', 'kernel entry point with --load-address (default: the load address)')
    .option('--zstd-level <n>', 'zstd compression level 1-19', '9')
    .option('--security-version <n>', 'downgrade protection: devices refuse releases below the highest they accepted')
    .option('--allow-rollback-from <n>', 'signed rollback allowance: devices whose floor is at most <n> may take it')
    .option('--binary-delta', 'also write a delta artifact (binary patches of changed files) per --delta-from')
    .option(
      '--delta-window-log <n>',
      'largest patch window a device must allow, log2 (files above half go plain)',
      '27',
    )
    .option(
      '--delta-format <n>',
      'delta format to write (1-3), named in its manifest; the server offers it only to devices that read it (docs/release-tool.md)',
      '3',
    )
    .option(
      '--delta-from-fleet <file>',
      'add --delta-from for each release listed by `cowroot releases bases <name> --json`',
    )
    .action(async (options: BuildOptions) => {
      const securityVersion = securityNumber('--security-version', options.securityVersion);
      const allowRollbackFrom = securityNumber('--allow-rollback-from', options.allowRollbackFrom);
      const zstdLevel = Number(options.zstdLevel);
      if (!Number.isInteger(zstdLevel) || zstdLevel < 1 || zstdLevel > 19) {
        throw new ReleaseError(ReleaseErrorCode.InvalidArgument, `--zstd-level must be 1-19, got ${options.zstdLevel}`);
      }
      const deltaWindowLog = Number(options.deltaWindowLog);
      if (!Number.isInteger(deltaWindowLog) || deltaWindowLog < 10 || deltaWindowLog > 31) {
        throw new ReleaseError(
          ReleaseErrorCode.InvalidArgument,
          `--delta-window-log must be 10-31, got ${options.deltaWindowLog}`,
        );
      }
      const deltaFormat = Number(options.deltaFormat);
      if (deltaFormat !== 1 && deltaFormat !== 2 && deltaFormat !== 3) {
        throw new ReleaseError(
          ReleaseErrorCode.InvalidArgument,
          `--delta-format must be 1, 2 or 3, got ${options.deltaFormat}`,
        );
      }
      const fleetBases = options.deltaFromFleet ? await readFleetBases(options.deltaFromFleet, options.name) : [];
      const builder = new ReleaseBuildService(new CommandRunner(), output.out);
      const result = await builder.build({
        rootfs: options.rootfs,
        pool: options.pool,
        release: new ReleaseRefArg(options.name, options.version),
        description: options.description,
        keyPath: options.key,
        outDir: options.out,
        base: options.base ? ReleaseRefArg.parse(options.base) : undefined,
        deltaFrom: options.deltaFrom.map((ref) => ReleaseRefArg.parse(ref)),
        fleetBases,
        arch: options.arch,
        kernel: options.kernel,
        initrd: options.initrd,
        loadAddress: options.loadAddress,
        entryPoint: options.entryPoint,
        zstdLevel,
        security: { securityVersion, allowRollbackFrom },
        binaryDelta: options.binaryDelta,
        deltaWindowLog,
        deltaFormat,
      });
      output.out(`release ${result.index.name}@${result.index.version}: ${result.indexPath}`);
    });

  root
    .command('verify')
    .description('check a manifest signature and, given the artifact, its size and sha256')
    .requiredOption('--manifest <file>', 'the .manifest.json file')
    .requiredOption('--signature <file>', 'the .manifest.sig file')
    .requiredOption('--public-key <file>', 'ed25519 public key (PEM)')
    .option('--artifact <file>', 'the artifact the manifest describes')
    .action(async (options: { manifest: string; signature: string; publicKey: string; artifact?: string }) => {
      const manifest = await new ReleaseVerifier().verify(options);
      output.out(
        `signature ok: ${manifest.release.name}@${manifest.release.version} ${manifest.kind} ${manifest.file}`,
      );
      if (options.artifact) output.out(`artifact ok: ${manifest.size} bytes, sha256 ${manifest.sha256}`);
    });

  registerImageCommand(root, output.out);
  registerSignCommand(root, output.out);

  return root;
}

/**
 * Runs the CLI on `args` (without node and script) and returns the exit code: 0 on success, 1 on a
 * failure (one line on stderr saying what and how to fix), commander's code for usage errors.
 */
export async function runCli(args: string[], output: CliOutput = processOutput): Promise<number> {
  try {
    await program(output).parseAsync(args, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    const known = asReleaseError(error);
    const message = known
      ? known.message
      : `unexpected failure: ${error instanceof Error ? error.message : String(error)}`;
    output.err(`cowroot-release: ${message}`);
    return 1;
  }
}
