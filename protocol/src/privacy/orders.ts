/**
 * Rényi orders the accountant tracks by default: 1.1, 1.2, …, 10.9, then 11, 12, …, 63, and
 * 128, 256, 512, 1024. This is the list of TF Privacy's MNIST tutorial and Opacus (up to 63) plus
 * large orders for tiny epsilons; it is also the `orders` list of the published test vectors.
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  // (11 + i) / 10 is the correctly rounded double of the decimal 1.1, 1.2, …
  ...Array.from({ length: 99 }, (_, i) => (11 + i) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128,
  256,
  512,
  1024,
]);
