import { Command, InvalidArgumentError } from 'commander';
import { FleetSimulator } from './fleet-simulator';
import { SIM_OUTCOMES, SimOutcome } from './sim-outcome';

/**
 * `npm run fleet-sim -- --http http://127.0.0.1:3000 --mqtt mqtt://127.0.0.1:1883 --token … --count 100
 *   --mix confirm=90,health-reject=5,bootloader-fallback=5`
 * Provisions and connects simulated devices, then prints job events as they happen until Ctrl-C.
 */
function parseMix(value: string): Array<[SimOutcome, number]> {
  return value.split(',').map((part) => {
    const [name, weight] = part.split('=');
    if (!SIM_OUTCOMES.includes(name as SimOutcome))
      throw new InvalidArgumentError(`unknown outcome ${name} (${SIM_OUTCOMES.join(', ')})`);
    const n = Number(weight ?? '1');
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`bad weight in ${part}`);
    return [name as SimOutcome, n];
  });
}

async function main(): Promise<void> {
  const program = new Command('fleet-sim')
    .description('simulated devices speaking the real protocol to a real cowroot server (a test tool)')
    .requiredOption('--http <url>', 'server REST URL')
    .requiredOption('--mqtt <url>', 'server MQTT URL')
    .requiredOption('--token <token>', 'operator or admin token for provisioning')
    .option('--count <n>', 'devices', (v) => Number(v), 10)
    .option('--prefix <id>', 'device id prefix', 'sim')
    .option('--tag <tag...>', 'tags for every device', [])
    .option('--mix <spec>', 'outcome weights, e.g. confirm=90,health-reject=10', parseMix, [[SimOutcome.Confirm, 1]])
    .parse();
  const options = program.opts<{
    http: string;
    mqtt: string;
    token: string;
    count: number;
    prefix: string;
    tag: string[];
    mix: Array<[SimOutcome, number]>;
  }>();
  const total = options.mix.reduce((sum, [, w]) => sum + w, 0);
  const outcomeOf = (index: number) => {
    let point = (((index * 7919) % 1000) / 1000) * total;
    for (const [outcome, weight] of options.mix) {
      if (point < weight) return outcome;
      point -= weight;
    }
    return options.mix[0][0];
  };
  const fleet = new FleetSimulator({
    httpUrl: options.http,
    mqttUrl: options.mqtt,
    token: options.token,
    count: options.count,
    idPrefix: options.prefix,
    tags: options.tag,
    outcomeOf,
  });
  await fleet.provision();
  await fleet.connectAll();
  console.log(`${fleet.devices.length} simulated devices connected`);
  const printed = { n: 0 };
  const timer = setInterval(() => {
    for (; printed.n < fleet.events.length; printed.n++) {
      const { deviceId, event } = fleet.events[printed.n];
      console.log(
        `${event.at} ${deviceId} ${event.type} command=${event.commandId}${event.error ? ` ${event.error.code}` : ''}`,
      );
    }
  }, 500);
  process.once('SIGINT', () => {
    clearInterval(timer);
    void fleet.stopAll().then(() => process.exit(0));
  });
}

main().catch((error: Error) => {
  console.error(`fleet-sim: ${error.message}`);
  process.exit(1);
});
