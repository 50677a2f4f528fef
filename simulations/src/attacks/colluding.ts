// Attacks whose update is crafted from every participant's honest update of the round (the
// attackers are assumed to see them, as both papers assume): the simulation's main thread
// collects the updates and hands the one crafted vector to the round's attackers.
import { FlotillaError } from '@flotilla/protocol';
import type { AttackName, NamedTensors } from './attacks.js';
import { innerProductManipulation } from './inner-product.js';
import { littleIsEnough } from './little-is-enough.js';

export const COLLUDING_ATTACKS = [
  'little-is-enough',
  'inner-product',
] as const satisfies readonly AttackName[];
export type ColludingAttack = (typeof COLLUDING_ATTACKS)[number];

export const isColludingAttack = (attack: AttackName): attack is ColludingAttack =>
  (COLLUDING_ATTACKS as readonly AttackName[]).includes(attack);

/** Options of {@link craftColludingUpdate}. */
export interface ColludingOptions {
  attack: ColludingAttack;
  /** The round's honest updates (attackers' own honest updates included). */
  honest: readonly NamedTensors[];
  /** Workers n reporting this round, and attackers m among them. */
  workers: number;
  attackers: number;
  /** The scenario's attackScale: z for little-is-enough, ε for inner-product. */
  scale?: number;
}

/** The vector every attacker of the round sends. */
export function craftColludingUpdate(options: ColludingOptions): NamedTensors {
  const { honest, workers, attackers, scale } = options;
  switch (options.attack) {
    case 'little-is-enough': {
      // A lone worker has no spread to hide in: it sends the mean (z = 0) of what it has.
      const z = scale ?? (workers < 2 ? 0 : undefined);
      return littleIsEnough({ honest, workers, attackers, ...(z !== undefined ? { z } : {}) });
    }
    case 'inner-product':
      return innerProductManipulation({ honest, ...(scale !== undefined ? { epsilon: scale } : {}) });
    default:
      throw new FlotillaError('BAD_REQUEST', `${String(options.attack)} is not a colluding attack`);
  }
}
