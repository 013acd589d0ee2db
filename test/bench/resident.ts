/**
 * Where a process's resident memory is, for the memory benches: /proc/<pid>/smaps split by kind
 * of mapping, and V8's committed heap (its /metrics, prom-client's defaults) set against the
 * anonymous part, so what is left over is native (malloc arenas: SQLite's page cache, Buffers'
 * backing stores, libuv; thread stacks).
 */
import { readFileSync } from 'node:fs';

export interface ResidentParts {
  /** All resident memory (the sum of every mapping's Rss), KiB. */
  total: number;
  /** Mapped files: node's and the native modules' code and data. */
  files: number;
  /** The main thread's malloc arena (brk, `[heap]`). */
  brk: number;
  /** Anonymous mappings: V8's pages, other threads' malloc arenas, large mallocs (mmap'd), stacks. */
  anon: number;
  /** Anonymous mappings inside 64 MiB-aligned reservations of 64 MiB: glibc's per-thread arenas. */
  arenas: number;
}

/** Rss per kind of mapping, from /proc/<pid>/smaps (KiB). */
export function residentParts(pid: number): ResidentParts {
  const parts: ResidentParts = { total: 0, files: 0, brk: 0, anon: 0, arenas: 0 };
  const ARENA = 64 * 1024 * 1024;
  let start = 0;
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      start = parseInt(head[1]!, 16);
      name = head[3]!;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const kib = Number(rss[1]);
    parts.total += kib;
    if (name === '[heap]') parts.brk += kib;
    else if (name.startsWith('/')) parts.files += kib;
    else {
      parts.anon += kib;
      // glibc's non-main arenas are 64 MiB-aligned heaps (HEAP_MAX_SIZE on 64-bit).
      if (start % ARENA === 0) parts.arenas += kib;
    }
  }
  return parts;
}

/** V8's view from the service's /metrics text: committed heap per space (KiB), and its GCs so far. */
export function v8Parts(metrics: string): {
  committed: number;
  used: number;
  spaces: Record<string, number>;
  gcs: Record<string, { count: number; seconds: number }>;
} {
  const gcs: Record<string, { count: number; seconds: number }> = {};
  for (const m of metrics.matchAll(/^nodejs_gc_duration_seconds_(count|sum)\{kind="(\w+)"\} (\S+)/gm)) {
    const gc = (gcs[m[2]!] ??= { count: 0, seconds: 0 });
    if (m[1] === 'count') gc.count = Number(m[3]);
    else gc.seconds = Number(m[3]);
  }
  const spaces: Record<string, number> = {};
  let committed = 0;
  for (const m of metrics.matchAll(/^nodejs_heap_space_size_total_bytes\{space="(\w+)"\} (\S+)/gm)) {
    spaces[m[1]!] = Number(m[2]) / 1024;
    committed += Number(m[2]) / 1024;
  }
  const used = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1] ?? NaN) / 1024;
  return { committed, used, spaces, gcs };
}
