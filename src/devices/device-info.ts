/**
 * The restricted value lists of X-Device-Info (adobe-pass.md §3.3, from Adobe's
 * "Header – X-Device-Info" appendix). Copied here on purpose: passgate validates what an app
 * sends before it reaches the upstream, and a value outside these lists would make the device
 * an `unknown` platform upstream (shorter TTLs, no HBA).
 */
export const primaryHardwareTypes = [
  'Camera',
  'DataCollectionTerminal',
  'Desktop',
  'EmbeddedNetworkModule',
  'eReader',
  'GamesConsole',
  'GeolocationTracker',
  'Glasses',
  'MediaPlayer',
  'MobilePhone',
  'PaymentTerminal',
  'PluginModem',
  'SetTopBox',
  'TV',
  'Tablet',
  'WirelessHotspot',
  'Wristwatch',
  'Unknown',
] as const;

export const osNames = ['Android', 'Chrome OS', 'Linux', 'Mac OS', 'OS X', 'OpenBSD', 'Roku OS', 'Windows', 'iOS', 'tvOS', 'webOS'] as const;

export const osFamilies = ['Android', 'BSD', 'Linux', 'PlayStation OS', 'Roku OS', 'Symbian', 'Tizen', 'Windows', 'iOS', 'tvOS', 'macOS', 'webOS'] as const;

export const osVendors = [
  'Amazon',
  'Apple',
  'Google',
  'LG',
  'Microsoft',
  'Mozilla',
  'Nintendo',
  'Nokia',
  'Roku',
  'Samsung',
  'Sony',
  'Tizen Project',
] as const;

/** The appendix spells the last-but-one "SeaMonke" (a typo); both spellings are accepted. */
export const browserNames = [
  'Android Browser',
  'Chrome',
  'Edge',
  'Firefox',
  'Internet Explorer',
  'Opera',
  'Safari',
  'SeaMonkey',
  'SeaMonke',
  'Symbian Browser',
] as const;

/**
 * adobe-pass.md §3.3 only says "restricted lists (Chrome, Safari, …)". The appendix starts with
 * Amazon, Apple, Google, Microsoft, Motorola, Mozilla; the rest are the vendors of the browsers
 * in `browserNames` (Nokia: Symbian Browser, Opera) and Samsung, so no listed browser is refused.
 */
export const browserVendors = ['Amazon', 'Apple', 'Google', 'Microsoft', 'Motorola', 'Mozilla', 'Netscape', 'Nokia', 'Opera', 'Samsung'] as const;

/** The keys passgate fills in from the real request; an app never supplies them (SPEC §6). */
export const connectionKeys = ['connectionIp', 'connectionPort'] as const;
