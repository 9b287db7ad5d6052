/** The PallyCon/DoveRunner license-token codec (drm.md §1): pure, shared with the simulator. */
export * from './callback.js';
export * from './crypto.js';
export * from './customdata.js';
export * from './license-errors.js';
export * from './policy-schema.js';
export * from './timestamp.js';
export * from './token.js';
