import { Command } from 'commander';
import { DEFAULT_POOL_MOUNT } from './agent-config.renderer';
import { FactoryImageWriter } from './factory-image.service';

interface ImageOptions {
  release: string;
  board: string;
  image: string;
  releaseKey: string;
  deviceId: string;
  credentialFile: string;
  mqttUrl: string;
  httpUrl: string;
  caFile?: string;
  boardEnv?: string;
  poolMount: string;
}

/**
 * Runs `body` with an AbortSignal that SIGINT/SIGTERM fire: the running command is killed and the
 * writer's cleanup (loop devices, mounts, temp files) runs before the process exits.
 */
async function withInterrupts<T>(body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  process.on('SIGINT', abort);
  process.on('SIGTERM', abort);
  try {
    return await body(controller.signal);
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
  }
}

/** `cowroot-release image` (docs/factory.md). */
export function registerImageCommand(root: Command, out: (line: string) => void): void {
  root
    .command('image')
    .description('write a flashable disk image (and its .bmap) of one device from a built release and a board profile')
    .requiredOption('--release <dir>', 'the --out directory of cowroot-release build (or sign)')
    .requiredOption('--board <file>', 'board profile (JSON, docs/factory.md; deploy/release/boards/)')
    .requiredOption('--image <file>', 'the disk image to write (must not exist); <file>.bmap is written next to it')
    .requiredOption('--release-key <file>', 'ed25519 public key (PEM) of the release signer, pinned on the device')
    .requiredOption('--device-id <id>', "the device's id, as provisioned on the server")
    .requiredOption('--credential-file <file>', "the device's factory credential (24-256 printable characters)")
    .requiredOption('--mqtt-url <url>', 'the fleet server: mqtt://host[:port] or mqtts://host[:port]')
    .requiredOption('--http-url <url>', 'the fleet server over HTTP(S), the only origin the agent downloads from')
    .option('--ca-file <file>', 'PEM CA bundle for mqtts:// and https:// artifact URLs')
    .option('--board-env <file>', "the board u-boot's default env (make u-boot-initial-env), kept under the profile's")
    .option('--pool-mount <path>', 'where the running system mounts the pool', DEFAULT_POOL_MOUNT)
    .action(async (options: ImageOptions) => {
      const writer = new FactoryImageWriter(out);
      const result = await withInterrupts((signal) =>
        writer.write({
          releaseDir: options.release,
          boardProfile: options.board,
          image: options.image,
          releaseKey: options.releaseKey,
          deviceId: options.deviceId,
          credentialFile: options.credentialFile,
          mqttUrl: options.mqttUrl,
          httpUrl: options.httpUrl,
          caFile: options.caFile,
          boardEnv: options.boardEnv,
          poolMount: options.poolMount,
          signal,
        }),
      );
      out(`factory image ${result.image} (snapshot ${result.snapshotId}), bmap ${result.bmap}`);
    });
}
