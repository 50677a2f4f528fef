#!/usr/bin/env python3
"""Test vectors for docs/protocol.md ("Seeded LoRA A"), computed from the spec's prose alone.

This is a second implementation of SeededRandom (splitmix32 seeding, xoshiro128**) and of the
version-0 LoRA A derivation, written in Python without reading the TypeScript one, so that the
vectors in the docs are an independent reference: protocol/test/protocol-doc-vectors.test.ts
checks the TypeScript implementation against the tables this script prints.

Run: python3 scripts/protocol-vectors.py   (needs numpy only for float32 rounding)
"""
import math

import numpy as np

MASK = 0xFFFFFFFF


def fmix_splitmix32(x):
    z = x
    z = ((z ^ (z >> 16)) * 0x85EBCA6B) & MASK
    z = ((z ^ (z >> 13)) * 0xC2B2AE35) & MASK
    return z ^ (z >> 16)


class SeededRandom:
    def __init__(self, seed):
        x = seed & MASK
        state = []
        for _ in range(4):
            x = (x + 0x9E3779B9) & MASK
            state.append(fmix_splitmix32(x))
        self.s = state

    @staticmethod
    def rotl(x, k):
        return ((x << k) | (x >> (32 - k))) & MASK

    def next_uint32(self):
        s0, s1, s2, s3 = self.s
        result = (self.rotl((s1 * 5) & MASK, 7) * 9) & MASK
        t = (s1 << 9) & MASK
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = self.rotl(s3, 11)
        self.s = [s0, s1, s2, s3]
        return result

    def next_float(self):
        return (self.next_uint32() >> 8) / 16777216


def fnv1a32_utf16(text):
    h = 0x811C9DC5
    units = text.encode("utf-16-le")
    for i in range(0, len(units), 2):
        h ^= units[i] | (units[i + 1] << 8)
        h = (h * 0x01000193) & MASK
    return h


def lora_a(seed, module, r, fan_in):
    rng = SeededRandom((seed % 2**32) ^ fnv1a32_utf16(module))
    bound = 1 / math.sqrt(fan_in)
    return [np.float32((2 * rng.next_float() - 1) * bound) for _ in range(r * fan_in)]


def main():
    print("SeededRandom: first four nextUint32")
    for seed in (0, 1, 42, 0xFFFFFFFF):
        rng = SeededRandom(seed)
        print(f"| {seed} | " + ", ".join(str(rng.next_uint32()) for _ in range(4)) + " |")
    print("\nfnv1a32")
    for name in ("hidden", "dense_1", "dense_é"):
        print(f"| `{name}` | 0x{fnv1a32_utf16(name):08x} |")
    print("\nLoRA A (seed, module, r, in: module seed, A[0][0..3], A[1][0])")
    cases = [(7, "hidden", 4, 784), (0, "dense_1", 2, 16), (2**32 + 7, "hidden", 4, 784), (123456, "dense_é", 3, 5)]
    for seed, module, r, fan_in in cases:
        a = lora_a(seed, module, r, fan_in)
        module_seed = (seed % 2**32) ^ fnv1a32_utf16(module)
        first = ", ".join(np.format_float_positional(v, unique=True) for v in a[:4])
        row1 = np.format_float_positional(a[fan_in], unique=True)
        print(f"| {seed} | `{module}` | {r} | {fan_in} | {module_seed} | {first} | {row1} |")


if __name__ == "__main__":
    main()
