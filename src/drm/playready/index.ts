/** PlayReady revocation data (drm.md §4): RevInfo download/store/serve and the RevAllowInfo allow-list. */
export * from './revallowinfo.js';
export * from './revinfo.js';
