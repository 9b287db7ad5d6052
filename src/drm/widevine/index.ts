/** Widevine direct mode (drm.md §3): the cloud license message, its signed envelope and the answer. Pure. */
export * from './envelope.js';
export * from './license-message.js';
export * from './license-response.js';
export * from './signature.js';
