/**
 * HandlerInvoker over AWS Lambda (architecture.md: the edge calls `subscribe`, `invite` and `deposit`
 * synchronously). RequestResponse with a tight timeout and bounded retries; a function error, a
 * throttle or a timeout rejects, and the edge answers 503 with Retry-After (500 when the error
 * is the function's own bug, functions/edge/handler-failure.ts), never silence.
 */
import './aws-sdk-quiet.ts';
import { randomBytes } from 'node:crypto';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { requestHandler } from './clients.ts';
import type { SipHandlerResult } from '../events.ts';
import type { HandlerInvoker } from '../ports.ts';

export interface LambdaInvokerOptions {
  functions: { subscribe: string; invite: string; deposit: string };
  /** Whole-call budget per invocation, retries included (ms). */
  timeoutMs: number;
  /** SDK attempts per call (1 = no retry). Default 2. */
  maxAttempts?: number;
  /**
   * The share of invocations marked sampled for X-Ray (a functions' PassThrough tracing follows
   * the mark); 0 marks none and leaves the decision to the function (its own sampling).
   */
  traceSampleRate?: number;
  client?: LambdaClient;
}

/** An X-Ray trace header (Root=1-<epoch hex>-<96 random bits>) marked sampled. */
export function sampledTraceHeader(nowMs = Date.now()): string {
  const epoch = Math.floor(nowMs / 1000)
    .toString(16)
    .padStart(8, '0');
  return `Root=1-${epoch}-${randomBytes(12).toString('hex')};Sampled=1`;
}

export class LambdaFunctionError extends Error {
  /** The type of the function's own error ("TypeError", "Sandbox.Timedout"), from its payload. */
  readonly errorType: string | undefined;

  constructor(
    readonly functionName: string,
    readonly kind: string,
    detail: string,
  ) {
    super(`${functionName}: ${kind}: ${detail}`);
    this.name = 'LambdaFunctionError';
    // A result without a status is the function's bug, like a TypeError in it.
    this.errorType = kind === 'BadResult' ? 'TypeError' : errorTypeIn(detail);
  }
}

/** Lambda's error payload: {"errorType": "...", "errorMessage": "..."}. */
function errorTypeIn(payload: string): string | undefined {
  try {
    const type = (JSON.parse(payload) as { errorType?: unknown }).errorType;
    return typeof type === 'string' ? type : undefined;
  } catch {
    return undefined;
  }
}

export class LambdaInvoker implements HandlerInvoker {
  private readonly client: LambdaClient;

  constructor(private readonly opts: LambdaInvokerOptions) {
    this.client =
      opts.client ??
      new LambdaClient({
        maxAttempts: opts.maxAttempts ?? 2,
        requestHandler: requestHandler({ connectionTimeoutMs: 1_000, requestTimeoutMs: opts.timeoutMs }),
      });
    const rate = opts.traceSampleRate ?? 0;
    if (rate > 0) {
      // Lambda's Invoke takes the trace header as X-Amzn-Trace-Id.
      this.client.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers && Math.random() < rate) request.headers['x-amzn-trace-id'] = sampledTraceHeader();
          return next(args);
        },
        { step: 'build', name: 'traceSampling' },
      );
    }
  }

  subscribe(event: Parameters<HandlerInvoker['subscribe']>[0]): Promise<SipHandlerResult> {
    return this.invoke(this.opts.functions.subscribe, event);
  }

  invite(event: Parameters<HandlerInvoker['invite']>[0]): Promise<SipHandlerResult> {
    return this.invoke(this.opts.functions.invite, event);
  }

  deposit(event: Parameters<HandlerInvoker['deposit']>[0]): Promise<SipHandlerResult> {
    return this.invoke(this.opts.functions.deposit, event);
  }

  /**
   * Readiness: each function reachable and invocable by this role, without running it (Lambda's
   * DryRun invocation checks the name and the permission only). Names the ones that are not.
   */
  async reachable(): Promise<{ ok: boolean; detail: Record<string, string> }> {
    const detail: Record<string, string> = {};
    await Promise.all(
      Object.entries(this.opts.functions).map(async ([role, name]) => {
        try {
          await this.client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'DryRun' }), {
            abortSignal: AbortSignal.timeout(this.opts.timeoutMs),
          });
          detail[role] = 'ok';
        } catch (err) {
          detail[role] = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        }
      }),
    );
    return { ok: Object.values(detail).every((v) => v === 'ok'), detail };
  }

  private async invoke(functionName: string, event: unknown): Promise<SipHandlerResult> {
    const out = await this.client.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: 'RequestResponse',
        Payload: Buffer.from(JSON.stringify(event), 'utf8'),
      }),
      { abortSignal: AbortSignal.timeout(this.opts.timeoutMs) },
    );
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) throw new LambdaFunctionError(functionName, out.FunctionError, text.slice(0, 2000));
    const result = JSON.parse(text) as SipHandlerResult;
    if (typeof result?.response?.status !== 'number') {
      throw new LambdaFunctionError(functionName, 'BadResult', 'no response status in the result');
    }
    return result;
  }
}
