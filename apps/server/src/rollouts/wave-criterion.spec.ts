import { ExecutionState } from './execution-state';
import { evaluateWave } from './wave-criterion';

describe('evaluateWave', () => {
  it('is not done while devices are queued or in flight (installed is not success)', () => {
    expect(evaluateWave({ [ExecutionState.Confirmed]: 3, [ExecutionState.Installed]: 1 }, 50)).toEqual({ done: false });
    expect(evaluateWave({ [ExecutionState.Queued]: 1 }, 0)).toEqual({ done: false });
  });

  it('succeeds when the confirmed share meets the criterion', () => {
    expect(evaluateWave({ [ExecutionState.Confirmed]: 8, [ExecutionState.TimedOut]: 2 }, 80)).toMatchObject({
      done: true,
      succeeded: true,
      confirmed: 8,
      considered: 10,
      requiredConfirmed: 8,
    });
  });

  it('fails below the criterion, counting every failure kind', () => {
    expect(
      evaluateWave(
        {
          [ExecutionState.Confirmed]: 7,
          [ExecutionState.Failed]: 1,
          [ExecutionState.RejectedByHealthCheck]: 1,
          [ExecutionState.RolledBackByBootloader]: 1,
        },
        80,
      ),
    ).toMatchObject({ done: true, succeeded: false, confirmed: 7, considered: 10, requiredConfirmed: 8 });
  });

  it('leaves canceled devices out and lets an empty wave pass', () => {
    expect(evaluateWave({ [ExecutionState.Confirmed]: 1, [ExecutionState.Canceled]: 5 }, 100)).toMatchObject({
      done: true,
      succeeded: true,
      considered: 1,
    });
    expect(evaluateWave({}, 100)).toMatchObject({ done: true, succeeded: true, considered: 0 });
  });
});
