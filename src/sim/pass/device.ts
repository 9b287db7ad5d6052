import type { SimDevice } from '../state.js';

/**
 * The parsed `device` object of GET sessions/{code} (adobe-pass.md §4.4, OpenAPI `Device`):
 * what the upstream derived from X-Device-Info and the request. Unknown parts are omitted.
 */
export interface DeviceView {
  type: string;
  model?: string;
  version?: { major?: string; minor?: string; patch?: string; profile?: string };
  hardware?: { name?: string; vendor?: string; version?: string; manufacturer?: string };
  operatingSystem?: { name?: string; family?: string; vendor?: string; version?: string };
  browser?: { name?: string; vendor?: string; version?: string; userAgent?: string; originalUserAgent?: string };
  display?: { width?: number; height?: number; ppi?: number; name?: string; vendor?: string; version?: string; diagonalSize?: string };
  applicationId?: string;
  connection?: { ipAddress?: string; port?: number; secure?: boolean; type?: string };
}

/** §3.3 primaryHardwareType values, plus the two the OpenAPI `Device.type` enum adds (§4.4). */
const deviceTypes = new Set([
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
  'VehicleMultimediaSystem',
  'Projector',
]);

const text = (value: unknown): string | undefined => {
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
};

const number = (value: unknown): number | undefined => {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  return undefined;
};

const flag = (value: unknown): boolean | undefined => {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  return undefined;
};

/** Drops undefined members; undefined when nothing is left, so empty objects are omitted too. */
function compact<T extends object>(value: T): T | undefined {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return entries.length === 0 ? undefined : (Object.fromEntries(entries) as T);
}

/** "2.0.1" → {major 2, minor 0, patch 1}; "1.2-beta" → profile "beta"; anything else is a profile. */
export function parseVersion(version: string | undefined): DeviceView['version'] {
  if (version === undefined) return undefined;
  const match = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+_ ](.+))?$/.exec(version);
  if (!match) return { profile: version };
  return compact({ major: match[1], minor: match[2], patch: match[3], profile: match[4] });
}

/** The §4.4 view of a session's device. `type` is always there ("Unknown" when nothing says). */
export function describeDevice(device: SimDevice): DeviceView {
  const raw = device.raw;
  // The iOS/tvOS snippets send `type` instead of `primaryHardwareType` (§3.3).
  const declaredType = text(raw.primaryHardwareType) ?? text(raw.type);
  const model = text(raw.model);
  const version = text(raw.version);
  const view: DeviceView = {
    type: declaredType && deviceTypes.has(declaredType) ? declaredType : 'Unknown',
    model,
    version: parseVersion(version),
    hardware: compact({ name: model, vendor: text(raw.vendor), version, manufacturer: text(raw.manufacturer) }),
    operatingSystem: compact({
      name: text(raw.osName),
      family: text(raw.osFamily),
      vendor: text(raw.osVendor),
      version: text(raw.osVersion),
    }),
    browser: compact({
      name: text(raw.browserName),
      vendor: text(raw.browserVendor),
      version: text(raw.browserVersion),
      userAgent: text(raw.userAgent) ?? device.userAgent,
      originalUserAgent: device.userAgent,
    }),
    display: compact({
      width: number(raw.displayWidth),
      height: number(raw.displayHeight),
      ppi: number(raw.displayPpi),
      diagonalSize: text(raw.diagonalScreenSize),
    }),
    applicationId: text(raw.applicationId),
    connection: compact({
      ipAddress: device.connectionIp ?? text(raw.connectionIp),
      port: number(raw.connectionPort),
      secure: flag(raw.connectionSecure),
      type: text(raw.connectionType),
    }),
  };
  return compact(view) ?? { type: 'Unknown' };
}
