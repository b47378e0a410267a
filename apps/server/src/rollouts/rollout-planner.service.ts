import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { DeviceSelector } from './device-selector';
import { WaveQueueRepository } from './wave-queue.repository';
import { cumulativeWaveBounds, WaveSize } from './wave-sizing';

export interface PlanInput {
  rolloutId: string;
  selector: DeviceSelector;
  /** `name@version`: devices already booted into it are not targeted */
  releaseRef: string;
  waves: readonly WaveSize[];
  randomize: boolean;
}

/**
 * Places targeted devices into waves with set-based SQL (one INSERT … SELECT, no query per device,
 * WaveQueueRepository), so a 10k-device fleet is planned in one statement. The order within the rollout
 * is random unless the operator asked otherwise; it is also the dispatch order.
 */
@Injectable()
export class RolloutPlanner {
  constructor(private readonly queue: WaveQueueRepository) {}

  /** Plans every device the selector matches now. @returns planned device count per wave */
  async planAll(manager: EntityManager, input: PlanInput): Promise<number[]> {
    const total = await this.queue.countTargets(manager, input.selector, input.releaseRef);
    const bounds = cumulativeWaveBounds(input.waves, total);
    const last = bounds[bounds.length - 1] ?? 0;
    if (last === 0) return bounds.map(() => 0);
    await this.queue.planAll(manager, input, bounds, last);
    await this.queue.recordQueued(manager, input.rolloutId, null);
    return bounds.map((bound, i) => bound - (i === 0 ? 0 : bounds[i - 1]));
  }

  /**
   * Continuous mode: devices that match the selector now (new registrations, tag changes) and are not
   * part of the rollout yet join its last wave, after everyone planned before them.
   * @returns the device ids that joined
   */
  async joinNewDevices(
    manager: EntityManager,
    input: Omit<PlanInput, 'waves'> & { lastWave: number },
  ): Promise<string[]> {
    const rows = await this.queue.joinNewDevices(manager, input);
    if (rows.length > 0)
      await this.queue.recordQueued(
        manager,
        input.rolloutId,
        rows.map((row) => row.id),
      );
    return rows.map((row) => row.device_id);
  }
}
