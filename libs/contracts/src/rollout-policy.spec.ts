import { DEFAULT_ROLLOUT_POLICY, offerPolicyOf, resolveRolloutPolicy, RolloutPolicyInputSchema, storedRolloutPolicy } from './rollout-policy';

describe(resolveRolloutPolicy.name, () => {
  it('gives a rollout without a policy the default shadow gate, health watch and onHalt rollback', () => {
    expect(resolveRolloutPolicy(undefined)).toEqual(DEFAULT_ROLLOUT_POLICY);
    expect(resolveRolloutPolicy({})).toEqual(DEFAULT_ROLLOUT_POLICY);
  });

  it('lays the operator\u2019s thresholds over the defaults', () => {
    const p = resolveRolloutPolicy({ shadowFrames: 30, shadowGate: { maxPairChange: 0.2 }, health: { frames: 10 }, onHalt: 'hold' });
    expect(p).toEqual({
      shadowFrames: 30,
      shadowGate: { ...DEFAULT_ROLLOUT_POLICY.shadowGate, maxPairChange: 0.2 },
      health: { ...DEFAULT_ROLLOUT_POLICY.health, frames: 10 },
      onHalt: 'hold',
    });
  });

  it('turns the gate or the watch off only with a reason', () => {
    expect(RolloutPolicyInputSchema.safeParse({ shadowGate: false }).success).toBe(false);
    expect(RolloutPolicyInputSchema.safeParse({ health: false, overrideReason: ' ' }).success).toBe(false);
    expect(RolloutPolicyInputSchema.safeParse({ shadowFrames: 0 }).success).toBe(false);
    const input = RolloutPolicyInputSchema.parse({ shadowGate: false, shadowFrames: 0, overrideReason: 'labels renamed on purpose' });
    expect(resolveRolloutPolicy(input)).toEqual({ shadowFrames: 0, shadowGate: false, health: DEFAULT_ROLLOUT_POLICY.health, onHalt: 'rollback', overrideReason: 'labels renamed on purpose' });
    // A reason with nothing turned off is not kept.
    expect(resolveRolloutPolicy({ overrideReason: 'just because' })).toEqual(DEFAULT_ROLLOUT_POLICY);
  });
});

describe(storedRolloutPolicy.name, () => {
  it('reads a stored policy as it was applied', () => {
    const p = resolveRolloutPolicy({ onHalt: 'hold' });
    expect(storedRolloutPolicy(JSON.parse(JSON.stringify(p)))).toEqual(p);
  });

  it('keeps a rollout created before the defaults as it was: no gate, no watch, devices held on a halt', () => {
    expect(storedRolloutPolicy(null)).toMatchObject({ shadowGate: false, health: false, onHalt: 'hold' });
    expect(storedRolloutPolicy({ shadowFrames: 20, shadowGate: { maxCategoryShift: 0.1 } })).toMatchObject({ shadowFrames: 20, shadowGate: { maxCategoryShift: 0.1 }, health: false, onHalt: 'hold' });
  });
});

describe(offerPolicyOf.name, () => {
  it('tells devices their part only: the hub judges the predicted change', () => {
    expect(offerPolicyOf(resolveRolloutPolicy({ shadowFrames: 20 }))).toEqual({
      shadowFrames: 20,
      shadowGate: { minAgreement: DEFAULT_ROLLOUT_POLICY.shadowGate.minAgreement, maxCategoryShift: DEFAULT_ROLLOUT_POLICY.shadowGate.maxCategoryShift },
      health: DEFAULT_ROLLOUT_POLICY.health,
    });
    expect(offerPolicyOf(resolveRolloutPolicy({ shadowGate: false, health: false, overrideReason: 'bench' }))).toEqual({});
  });
});
