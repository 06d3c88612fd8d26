/**
 * The native C yardstick of bench/prover.ts: the same element() stream and i-k-j product as
 * wasm/prover.ts (gcc -O3 -march=native, auto-vectorised), and the whole prove: the product, every
 * row's leaf hash SHA-256(0x00 | row, little-endian u32) and the RFC 9162 Merkle root, hashed by
 * OpenSSL's libcrypto (SHA-NI where the CPU has it). Compiled in a temporary directory per run.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { WorkKey } from '../src/core/pulse/work.ts'

const C_SOURCE = String.raw`
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/sha.h>

static inline uint32_t element(uint32_t index, uint32_t k0, uint32_t k1) {
  uint32_t z = ((index + k0) * 0x9E3779B9u) ^ k1;
  z = (z ^ (z >> 16)) * 0x85EBCA6Bu;
  z = (z ^ (z >> 13)) * 0xC2B2AE35u;
  return z ^ (z >> 16);
}

/* A, B from the key, then C = A x B in i-k-j order, every element mod 2^32. */
static void product(uint32_t k0, uint32_t k1, int n, uint32_t *restrict a, uint32_t *restrict b, uint32_t *restrict c) {
  size_t nn = (size_t)n * n;
  for (size_t i = 0; i < nn; i++) a[i] = element((uint32_t)i, k0, k1);
  for (size_t i = 0; i < nn; i++) b[i] = element((uint32_t)(nn + i), k0, k1);
  memset(c, 0, nn * sizeof *c);
  for (int i = 0; i < n; i++) {
    uint32_t *restrict ci = c + (size_t)i * n;
    for (int k = 0; k < n; k++) {
      const uint32_t aik = a[(size_t)i * n + k];
      const uint32_t *restrict bk = b + (size_t)k * n;
      for (int j = 0; j < n; j++) ci[j] += aik * bk[j];
    }
  }
}

/* Leaves: SHA-256(0x00 | row bytes); the host is little-endian, so a row's bytes are its u32s. */
static void leaves(const uint32_t *c, int n, unsigned char *message, unsigned char (*leaf)[32]) {
  message[0] = 0;
  for (int i = 0; i < n; i++) {
    memcpy(message + 1, c + (size_t)i * n, (size_t)n * 4);
    SHA256(message, (size_t)n * 4 + 1, leaf[i]);
  }
}

/* RFC 9162: split at the largest power of two below the count; nodes SHA-256(0x01 | left | right). */
static void root(unsigned char (*leaf)[32], int count, unsigned char *out) {
  if (count == 1) { memcpy(out, leaf[0], 32); return; }
  int k = 1;
  while (k * 2 < count) k *= 2;
  unsigned char message[65];
  message[0] = 1;
  root(leaf, k, message + 1);
  root(leaf + k, count - k, message + 33);
  SHA256(message, 65, out);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* argv: k0 k1 runs n...; prints per n: "n checksum roothex" then "product ms..." then "whole ms...". */
int main(int argc, char **argv) {
  uint32_t k0 = (uint32_t)strtoul(argv[1], 0, 10), k1 = (uint32_t)strtoul(argv[2], 0, 10);
  int runs = atoi(argv[3]);
  for (int s = 4; s < argc; s++) {
    int n = atoi(argv[s]);
    size_t nn = (size_t)n * n;
    uint32_t *a = aligned_alloc(64, nn * 4 + 64), *b = aligned_alloc(64, nn * 4 + 64), *c = aligned_alloc(64, nn * 4 + 64);
    unsigned char *message = malloc((size_t)n * 4 + 1);
    unsigned char (*leaf)[32] = malloc((size_t)n * 32);
    unsigned char r[32];
    product(k0, k1, n, a, b, c);
    leaves(c, n, message, leaf);
    root(leaf, n, r);
    uint32_t h = 0x811C9DC5u;
    for (size_t i = 0; i < nn; i++) h = (h ^ c[i]) * 0x01000193u;
    printf("%d %u ", n, h);
    for (int i = 0; i < 32; i++) printf("%02x", r[i]);
    printf("\nproduct");
    for (int i = 0; i < runs; i++) {
      double t0 = now_ms();
      product(k0, k1, n, a, b, c);
      printf(" %.4f", now_ms() - t0);
    }
    printf("\nwhole");
    for (int i = 0; i < runs; i++) {
      double t0 = now_ms();
      product(k0, k1, n, a, b, c);
      leaves(c, n, message, leaf);
      root(leaf, n, r);
      printf(" %.4f", now_ms() - t0);
    }
    printf("\n");
    free(a); free(b); free(c); free(message); free(leaf);
  }
  return 0;
}
`

export interface NativeResult {
  n: number
  /** FNV-1a of C's u32s, as the bench's suite computes it. */
  checksum: number
  rootHex: string
  productMs: number[]
  /** Product, leaf hashes and root. */
  wholeMs: number[]
}

export type NativeRun = { results: NativeResult[], compiler: string } | { error: string }

export function runNative (key: WorkKey, runs: number, sizes: readonly number[]): NativeRun {
  const dir = mkdtempSync(join(tmpdir(), 'pulse-bench-'))
  try {
    writeFileSync(join(dir, 'prover.c'), C_SOURCE)
    const binary = join(dir, 'prover')
    const compiled = spawnSync('gcc', ['-O3', '-march=native', '-std=gnu11', '-o', binary, join(dir, 'prover.c'), '-lcrypto'], { encoding: 'utf8' })
    if (compiled.error !== undefined || compiled.status !== 0) return { error: `gcc failed (libssl-dev missing?): ${compiled.error?.message ?? compiled.stderr}` }
    const compiler = execFileSync('gcc', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? 'gcc'
    const lines = execFileSync(binary, [String(key.k0), String(key.k1), String(runs), ...sizes.map(String)], { encoding: 'utf8' }).trim().split('\n')
    const results: NativeResult[] = []
    for (let i = 0; i + 2 < lines.length; i += 3) {
      const [n, checksum, rootHex] = (lines[i] ?? '').trim().split(/\s+/)
      const times = (line: string | undefined, label: string): number[] => {
        const [head, ...ms] = (line ?? '').trim().split(/\s+/)
        if (head !== label) throw new Error(`bench: native prover printed "${line ?? ''}", expected ${label} times`)
        return ms.map(Number)
      }
      results.push({ n: Number(n), checksum: Number(checksum), rootHex: rootHex ?? '', productMs: times(lines[i + 1], 'product'), wholeMs: times(lines[i + 2], 'whole') })
    }
    return { results, compiler }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
