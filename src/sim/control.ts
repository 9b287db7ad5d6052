import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { defaultRules, degradationRule, simRulesSchema, type SimRules } from './rules.js';
import type { SimState } from './state.js';

/** Actions that are not rules: they act once on the simulator's state. */
const actionsSchema = z.strictObject({
  /** Back to the default rules and an empty state (clients, tokens, sessions, profiles, log). */
  reset: z.boolean().optional(),
  /** Fault knob: every access token issued so far answers 401 from now on. */
  expireTokens: z.boolean().optional(),
  /** Forget every device's throttle bucket. */
  resetThrottle: z.boolean().optional(),
  /**
   * What the programmer's Degradation API call does (degradation-api-overview.md): apply a rule to
   * an MVPD's integration, or lift it with `none`, e.g. `{"degrade": {"Cablevision": "AuthZAll"}}`.
   */
  degrade: z.record(z.string(), degradationRule).optional(),
});

const actionKeys = new Set(Object.keys(actionsSchema.shape));

export interface ControlHooks {
  resetThrottle(): void;
}

/** The control plane of SPEC §10: GET|DELETE /sim/log, GET|POST /sim/config. */
export function controlRoutes(state: SimState, hooks: ControlHooks): Router {
  const router = new Router({ prefix: '/sim' });

  router.get('sim.log', '/log', (ctx: Context) => {
    ctx.body = state.log;
  });

  router.delete('sim.log.clear', '/log', (ctx: Context) => {
    state.log = [];
    ctx.status = 204;
  });

  router.get('sim.config', '/config', (ctx: Context) => {
    ctx.body = state.rules;
  });

  router.post('sim.config.update', '/config', (ctx: Context) => {
    const body: unknown = ctx.request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_config', issues: [{ path: '', message: 'body must be a JSON object' }] };
      return;
    }
    const input = body as Record<string, unknown>;
    const actions = actionsSchema.safeParse(Object.fromEntries(Object.entries(input).filter(([k]) => actionKeys.has(k))));
    const changes = Object.fromEntries(Object.entries(input).filter(([k]) => !actionKeys.has(k)));
    const base: SimRules = actions.success && actions.data.reset ? defaultRules() : state.rules;
    // A top-level key given replaces that part of the rules; the rest stays as it is.
    const next = simRulesSchema.safeParse({ ...base, ...changes });
    const degrade = actions.success ? (actions.data.degrade ?? {}) : {};
    const unknown = next.success ? Object.keys(degrade).filter((id) => !next.data.mvpds.some((m) => m.id === id)) : [];
    if (!actions.success || !next.success || unknown.length > 0) {
      const issues = [
        ...(actions.error?.issues ?? []),
        ...(next.error?.issues ?? []),
        ...unknown.map((id) => ({ path: ['degrade', id], message: 'no MVPD with this id' })),
      ];
      ctx.status = 400;
      ctx.body = {
        error: 'invalid_config',
        issues: issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
      };
      return;
    }
    for (const mvpd of next.data.mvpds) if (Object.hasOwn(degrade, mvpd.id)) mvpd.degradation = degrade[mvpd.id] ?? mvpd.degradation;
    if (actions.data.reset) {
      state.reset(next.data);
      hooks.resetThrottle();
    } else {
      state.rules = next.data;
      state.ruleUses.clear();
    }
    if (actions.data.expireTokens) state.expireAllTokens();
    if (actions.data.resetThrottle) hooks.resetThrottle();
    ctx.body = state.rules;
  });

  return router;
}
