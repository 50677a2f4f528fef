// What the page tells the person, in words: one sentence per thing that happened. Pure
// functions of the device's events, so every sentence is checked in one place.
import type { DeviceStopReason } from '@flotilla/client/browser';

type SkipReason = 'validation-gate' | 'budget-exhausted' | 'no-data' | 'error';

const percent = (x: number) => `${(x * 100).toFixed(0)}%`;

export function trainingWords(round: number, examples: number): string {
  return `Round ${round}: training on your ${examples} examples…`;
}

export function trainedWords(
  round: number,
  measured: { lossBefore: number; lossAfter: number; accuracyAfter: number } | null,
  update: { norm: number; clipped: boolean; bytes: number } | null,
  clipNorm: number,
): string {
  const result = measured
    ? ` On your held-back examples the loss went from ${measured.lossBefore.toFixed(3)} to ${measured.lossAfter.toFixed(3)} (accuracy ${percent(measured.accuracyAfter)}).`
    : '';
  if (!update) return `Round ${round}: training finished.${result}`;
  const clip = update.clipped
    ? `scaled down to the task's limit of ${clipNorm}`
    : `within the task's limit of ${clipNorm}`;
  return (
    `Round ${round}: training finished.${result} Sending the change to the model's weights ` +
    `(${(update.bytes / 1024).toFixed(1)} KB, length ${update.norm.toFixed(3)}, ${clip}), signed with this browser's key…`
  );
}

export function acceptedWords(round: number): string {
  return `Round ${round}: your update was accepted.`;
}

export function refusedWords(round: number, code: string, message: string): string {
  return `Round ${round}: your update was refused (${code}: ${message}).`;
}

const SKIPS: Record<SkipReason, string> = {
  'validation-gate':
    'training made your held-back examples worse, so the change was kept here and nothing was sent',
  'budget-exhausted': 'no training step fitted in the time the round allows, so nothing was sent',
  'no-data': 'there are no examples to train on, so nothing was sent',
  error: 'training failed on this device, so nothing was sent',
};

export function skippedWords(round: number, reason: SkipReason): string {
  return `Round ${round}: ${SKIPS[reason]}.`;
}

export function modelVersionWords(version: number): string {
  return `The shared model is now at version ${version}; this browser downloaded it and checked its signature.`;
}

const STOPS: Record<DeviceStopReason, string> = {
  stopped: 'Stopped. This browser is disconnected and sends nothing more.',
  'max-rounds': 'Done: this browser took part in the rounds it was asked to and disconnected.',
  'task-stopped': 'The training task has ended. This browser is disconnected.',
  fatal: 'Stopped after an error. This browser is disconnected.',
};

export function stoppedWords(reason: DeviceStopReason): string {
  return STOPS[reason];
}
