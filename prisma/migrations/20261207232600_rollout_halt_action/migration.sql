-- What a rollout's halt did to the devices already active on its version: 'rollback' (sent
-- back to their previous version, the default policy) or 'hold' (kept it). Null: the stage
-- engine never halted the rollout. The policy column now holds the applied policy, every
-- default filled in (rows from before keep what they stored: no gate, no health watch).
ALTER TABLE "rollouts" ADD COLUMN "halt_action" TEXT;
