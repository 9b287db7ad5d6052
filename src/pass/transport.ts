import { Problem } from '../http/problem.js';
import type { Logger } from '../infra/logger.js';
import { UpstreamUnavailableError, type UpstreamCall, type UpstreamClient } from '../infra/upstream-http.js';
import { readAnswer, type PassAnswer } from './errors.js';
import type { ThrottleMirror } from './throttle.js';

/** The part of the upstream HTTP client the Pass client uses (tests may pass a stand-in). */
export type PassHttp = Pick<UpstreamClient, 'request'>;

export type PassCall = Omit<UpstreamCall, 'signal' | 'body'>;

/**
 * Every call to the Pass service (DCR included) goes through `send`: take a throttle token for
 * the device IP, make the call, classify the answer. An upstream 429 holds the IP and becomes
 * upstream_throttled; an unreachable upstream (network, timeout, breaker open) becomes
 * upstream_unavailable. Everything else is returned classified for the caller to interpret.
 */
export class PassTransport {
  constructor(
    private readonly deps: {
      http: PassHttp;
      throttle: ThrottleMirror;
      logger: Logger;
    },
  ) {}

  async send(deviceIp: string, call: PassCall): Promise<Exclude<PassAnswer, { kind: 'throttled' }>> {
    await this.deps.throttle.admit(deviceIp, call.operation);
    let answer: PassAnswer;
    try {
      answer = readAnswer(await this.deps.http.request(call));
    } catch (error) {
      if (error instanceof UpstreamUnavailableError) throw unavailableProblem(call.operation, error);
      throw error;
    }
    if (answer.kind === 'throttled') throw await this.deps.throttle.upstreamThrottled(deviceIp, call.operation);
    return answer;
  }
}

function unavailableProblem(operation: string, error: UpstreamUnavailableError): Problem {
  const seconds = Math.max(1, Math.ceil((error.retryAfterMs ?? 1000) / 1000));
  const why = error.reason === 'breaker_open' ? 'calls are paused after repeated failures' : `the call failed (${error.reason})`;
  return new Problem('upstream_unavailable', `The Pass service is unavailable for ${operation}: ${why}.`, {
    headers: { 'Retry-After': String(seconds) },
  });
}
