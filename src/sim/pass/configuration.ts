import Router from '@koa/router';
import type { Context } from 'koa';
import type { SimMvpd } from '../rules.js';
import type { SimDevice, SimState } from '../state.js';
import { MalformedRequest, PassError } from './errors.js';
import { passState, requireHeaders } from './headers.js';
import { requireServiceProvider } from './lookup.js';

export interface ConfigurationMvpd {
  id: string;
  displayName: string;
  logoUrl: string;
  authPerAggregator: boolean;
  isTempPass?: true;
}

/**
 * An MVPD item as in the §4.1 sample. The simulator has no aggregator model: like the sample,
 * the TempPass MVPD is authenticated per aggregator and the others are not.
 */
function mvpdItem(mvpd: SimMvpd): ConfigurationMvpd {
  return {
    id: mvpd.id,
    displayName: mvpd.displayName,
    logoUrl: mvpd.logoUrl,
    authPerAggregator: mvpd.isTempPass,
    // Only TempPass MVPDs carry the flag, as in the sample; test MVPDs are listed unmarked.
    ...(mvpd.isTempPass ? { isTempPass: true as const } : {}),
  };
}

const info = (device: SimDevice, key: string): string | undefined => {
  const value = device.raw[key];
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
};

export function configurationRoutes(state: SimState): Router {
  const router = new Router();

  // adobe-pass.md §4.1: "a list of MVPDs having an active integration with the serviceProvider".
  router.get(
    'configuration',
    '/api/v2/:serviceProvider/configuration',
    requireHeaders(state, { authorization: true, deviceIdentifier: false, deviceInfo: false }),
    (ctx: Context) => {
      const serviceProvider = requireServiceProvider(state, ctx.params.serviceProvider);
      // `profile` is documented only as "-" (§4.1): accepted and ignored, but one value at most.
      const profile = ctx.query.profile;
      if (Array.isArray(profile)) throw new MalformedRequest('parameter profile is repeated');
      const requestor = state.rules.serviceProviders[serviceProvider];
      if (!requestor) throw new PassError('invalid_parameter_service_provider');
      const { device } = passState(ctx);
      ctx.body = {
        // §12.2: the top-level extras vary; the sample's device/clientType/os are derived from X-Device-Info.
        device: info(device, 'primaryHardwareType') ?? 'unknown',
        clientType: 'html5',
        os: info(device, 'osName') ?? 'Unknown',
        requestor: {
          id: serviceProvider,
          name: requestor.name,
          domains: requestor.domains.map((domain) => ({ name: domain.name, mvpdInitiated: domain.mvpdInitiated })),
          // §12.2: mvpds live inside requestor (sample + OpenAPI), not beside it; disabled integrations vanish.
          mvpds: state.rules.mvpds.filter((mvpd) => mvpd.enabled).map(mvpdItem),
        },
      };
    },
  );

  return router;
}
