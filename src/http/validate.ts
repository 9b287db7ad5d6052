import type { z } from 'zod';
import type { AppContext, AppMiddleware } from './context.js';
import { Problem } from './problem.js';

declare module './context.js' {
  interface AppState {
    /** The request body as the route's schema parsed it (set by `validate`). */
    input?: unknown;
  }
}

export interface FieldProblem {
  path: string;
  message: string;
}

/**
 * The body-validation step of a route chain (rate limit → auth → validate(schema) → handler):
 * a JSON body that fails the schema is a 400 `invalid_body` naming every field; the parsed
 * value is on `ctx.state.input` for the handler (read it with `validInput`).
 */
export function validate(schema: z.ZodType): AppMiddleware {
  return async (ctx, next) => {
    // The media type without parameters, as type-is compares it (case-insensitive), without its cost per request.
    if (ctx.request.type.trim().toLowerCase() !== 'application/json') {
      throw new Problem('unsupported_media_type', 'Send the body as application/json.');
    }
    const parsed = schema.safeParse(ctx.request.body);
    if (!parsed.success) {
      // Parsed again for the error report only: reportInput takes zod off its fast path (≈ 5× the cost).
      const reported = schema.safeParse(ctx.request.body, { reportInput: true });
      const errors = fieldProblems(reported.success ? parsed.error : reported.error);
      throw new Problem('invalid_body', `The body is invalid: ${errors.map((e) => e.path).join(', ')}.`, { errors });
    }
    ctx.state.input = parsed.data;
    await next();
  };
}

/** The body `validate(schema)` parsed; the type is the schema's output. */
export function validInput<T>(ctx: AppContext): T {
  if (ctx.state.input === undefined) throw new Error('validInput: no validate(schema) ran before this handler');
  return ctx.state.input as T;
}

/** One `{path, message}` per field; messages never echo the value sent. */
export function fieldProblems(error: z.ZodError): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const issue of error.issues) {
    const where = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ path: where ? `${where}.${key}` : key, message: 'unknown key' });
      continue;
    }
    problems.push({ path: where || '(body)', message: describe(issue) });
  }
  return problems;
}

function describe(issue: z.core.$ZodIssue): string {
  // Absent keys: every schema kind (string, enum, object) reports them with input undefined.
  if (issue.input === undefined && issue.code !== 'custom') return 'required';
  if (issue.code === 'invalid_type') {
    // A custom message (e.g. "set by passgate …") wins over the generic one.
    if (!issue.message.startsWith('Invalid input')) return issue.message;
    return `expected ${article(issue.expected)}, got ${kindOf(issue.input)}`;
  }
  return issue.message;
}

function article(expected: string): string {
  return expected === 'object' ? 'a JSON object' : expected === 'array' ? 'an array' : `a ${expected}`;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
