import type { SimDevice } from '../state.js';

/**
 * The `device` object of GET sessions/{code}, shaped as both samples of
 * rest-api-v2-sessions-apis-retrieve-authentication-session-information-using-code.md show it:
 * every member is always there, unknown texts are null, versions are {major, minor, patch,
 * profile} objects of numbers (0 when unknown) and a profile text, display figures are numbers
 * (0 when unknown), the connection port is a string and `secure` a boolean.
 */
export interface VersionView {
  major: number;
  minor: number;
  patch: number;
  profile: string;
}

export interface DeviceView {
  type: string;
  model: string | null;
  version: VersionView;
  hardware: { name: string | null; vendor: string | null; version: VersionView; manufacturer: string | null };
  operatingSystem: { name: string | null; family: string | null; vendor: string | null; version: VersionView };
  browser: { name: string | null; vendor: string | null; version: VersionView; userAgent: string | null; originalUserAgent: string | null };
  display: { width: number; height: number; ppi: number; name: string; vendor: string | null; version: string | null; diagonalSize: string | null };
  applicationId: string | null;
  connection: { ipAddress: string | null; port: string | null; secure: boolean; type: string | null };
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

const text = (value: unknown): string | null => {
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
};

const number = (value: unknown): number => {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  return 0;
};

const flag = (value: unknown): boolean => value === true || value === 'true';

/** "2.0.1" → 2, 0, 1, ""; "1.2-beta" → 1, 2, 0, "beta"; anything else (e.g. "r0q") is all profile. */
export function parseVersion(version: string | null): VersionView {
  const match = version === null ? null : /^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+_ ](.+))?$/.exec(version);
  if (!match) return { major: 0, minor: 0, patch: 0, profile: version ?? '' };
  return { major: Number(match[1]), minor: Number(match[2] ?? 0), patch: Number(match[3] ?? 0), profile: match[4] ?? '' };
}

/** The session's device as the upstream normalises it: X-Device-Info's values, the User-Agent, the device IP. */
export function describeDevice(device: SimDevice): DeviceView {
  const raw = device.raw;
  // The iOS/tvOS snippets send `type` instead of `primaryHardwareType` (X-Device-Info appendix).
  const declaredType = text(raw.primaryHardwareType) ?? text(raw.type);
  const version = text(raw.version);
  const userAgent = device.userAgent ?? null;
  return {
    type: declaredType !== null && deviceTypes.has(declaredType) ? declaredType : 'Unknown',
    model: text(raw.model),
    version: parseVersion(version),
    hardware: { name: text(raw.model), vendor: text(raw.vendor), version: parseVersion(version), manufacturer: text(raw.manufacturer) },
    operatingSystem: { name: text(raw.osName), family: text(raw.osFamily), vendor: text(raw.osVendor), version: parseVersion(text(raw.osVersion)) },
    browser: {
      name: text(raw.browserName),
      vendor: text(raw.browserVendor),
      version: parseVersion(text(raw.browserVersion)),
      userAgent: text(raw.userAgent) ?? userAgent,
      originalUserAgent: userAgent,
    },
    // The samples' display of a device that tells nothing: zeros and the name "DISPLAY".
    display: {
      width: number(raw.displayWidth),
      height: number(raw.displayHeight),
      ppi: number(raw.displayPpi),
      name: 'DISPLAY',
      vendor: null,
      version: null,
      diagonalSize: text(raw.diagonalScreenSize),
    },
    applicationId: text(raw.applicationId),
    connection: {
      ipAddress: device.connectionIp ?? text(raw.connectionIp),
      port: text(raw.connectionPort) ?? device.connectionPort ?? null,
      secure: flag(raw.connectionSecure),
      type: text(raw.connectionType),
    },
  };
}
