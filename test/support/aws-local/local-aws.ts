/**
 * AWS emulators for the tests of the DynamoDB and SQS adapters (never on the path `npm start`
 * runs): dynalite for DynamoDB, persisted under `${dataDir}/dynamodb` when given a folder, and
 * local-aws-sqs for SQS (memory only), both on loopback.
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createSqsServer } from 'local-aws-sqs';
import { LOCAL_REGION } from '#shared/adapters/clients.ts';

interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}

// dynalite is CommonJS without type declarations: load it through require with its shape.
const require = createRequire(import.meta.url);
const dynalite = require('dynalite') as (options: DynaliteOptions) => Server;

export interface LocalAwsOptions {
  /** Where dynalite keeps its LevelDB; undefined keeps everything in memory. */
  dataDir: string | undefined;
  /** Listen address. Default 127.0.0.1. */
  host?: string;
  /** 0 (default) picks a free port. */
  dynamoPort?: number;
  sqsPort?: number;
}

export interface LocalAws {
  dynamoEndpoint: string;
  sqsEndpoint: string;
  stop(): Promise<void>;
}

export async function startLocalAws(options: LocalAwsOptions): Promise<LocalAws> {
  const host = options.host ?? '127.0.0.1';
  let dbPath: string | undefined;
  if (options.dataDir !== undefined) {
    dbPath = path.join(options.dataDir, 'dynamodb');
    await mkdir(dbPath, { recursive: true });
  }
  // Tables become ACTIVE at once: nothing to wait for in tests or at start-up.
  const dynamo = dynalite({ path: dbPath, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await listen(dynamo, options.dynamoPort ?? 0, host);

  let sqs: Server;
  try {
    sqs = await createSqsServer({
      port: options.sqsPort ?? 0,
      hostname: host,
      region: LOCAL_REGION,
      // A restarted local stack recreates its queues at once.
      emulateQueueCreationLifecycle: false,
    });
  } catch (err) {
    await close(dynamo);
    throw err;
  }

  let stopped: Promise<void> | undefined;
  return {
    dynamoEndpoint: endpointOf(dynamo, host),
    sqsEndpoint: endpointOf(sqs, host),
    stop() {
      stopped ??= Promise.all([close(sqs), close(dynamo)]).then(() => undefined);
      return stopped;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Close a server, dropping idle keep-alive connections the SDK holds open. */
function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

function endpointOf(server: Server, host: string): string {
  const { port } = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
