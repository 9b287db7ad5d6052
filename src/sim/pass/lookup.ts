import type { SimMvpd } from '../rules.js';
import type { SimState } from '../state.js';
import { PassError } from './errors.js';

/** The service provider in the path must be one the simulator knows (§7.3 invalid_parameter_service_provider). */
export function requireServiceProvider(state: SimState, serviceProvider: string | undefined): string {
  if (!serviceProvider || !Object.hasOwn(state.rules.serviceProviders, serviceProvider)) {
    throw new PassError('invalid_parameter_service_provider');
  }
  return serviceProvider;
}

/** An MVPD with an active integration: unknown → invalid_parameter_mvpd, disabled → invalid_integration (§4.2). */
export function requireMvpd(state: SimState, mvpd: string | undefined): SimMvpd {
  const found = mvpd ? state.mvpd(mvpd) : undefined;
  if (!found) throw new PassError('invalid_parameter_mvpd');
  if (!found.enabled) throw new PassError('invalid_integration');
  return found;
}

/** Timestamps: sessions serialise them as strings, profiles and decisions as numbers (§12.3). */
export const sessionTime = (ms: number) => String(ms);
