import { FlotillaError, type LogLeaf, type UpdateRefusal, type WireError } from '@flotilla/protocol';

/**
 * A refused `update:submit` as its device is answered (`UpdateRefusal`): the reason it was given,
 * and the leaf of the refusal's `update.refused` record, so the device can ask for its inclusion
 * proof. The refusal that caused it stays the `cause`, for the logs.
 */
export class RefusedUpdateError extends FlotillaError {
  constructor(
    wire: WireError,
    readonly logLeaf: LogLeaf,
    cause: unknown,
  ) {
    super(wire.code, wire.message, { cause });
  }

  override toWire(): WireError & Pick<UpdateRefusal, 'logLeaf'> {
    return { ...super.toWire(), logLeaf: this.logLeaf };
  }
}
