/**
 * How handlers reach this edge task (architecture.md: record the owning task with the session): the
 * base URL of its control API. Set by EDGE_ID; on ECS, the task's private address from the task
 * metadata endpoint (v4); in the local default, 'local' (one process, called directly).
 */
import type { Config } from '#shared/config.ts';

export async function resolveEdgeId(
  config: Config,
  env: Record<string, string | undefined> = process.env,
): Promise<string> {
  if (config.edgeId) return config.edgeId;
  const metadata = env.ECS_CONTAINER_METADATA_URI_V4;
  if (!metadata) return 'local';
  const res = await fetch(`${metadata}/task`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`ECS task metadata answered ${res.status}`);
  const task = (await res.json()) as { Containers?: { Networks?: { IPv4Addresses?: string[] }[] }[] };
  const address = task.Containers?.flatMap((c) => c.Networks ?? []).flatMap((n) => n.IPv4Addresses ?? [])[0];
  if (!address) throw new Error('ECS task metadata names no IPv4 address for this task');
  return `http://${address}:${config.adminPort}`;
}
