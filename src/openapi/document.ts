import { agentApi } from './agent-paths.js';
import { appApi } from './app-paths.js';
import { drmApi } from './drm-paths.js';
import type { ApiPart, HttpMethod, JsonSchema, PathItem, ServerObject } from './operations.js';
import { pagesApi } from './page-paths.js';
import { responseSchemas } from './schemas.js';

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  servers: { url: string }[];
  tags: { name: string; description: string }[];
  paths: Record<string, PathItem>;
  components: {
    schemas: Record<string, JsonSchema>;
    securitySchemes: Record<string, JsonSchema>;
  };
}

const description = [
  'passgate sits between streaming apps and the Pass service (Adobe Pass REST API V2 + DCR) and gates DRM license issuance on live Permit decisions.',
  '',
  '- Every error is `application/problem+json` (RFC 9457) with a stable `code`, and `upstream` when the cause is upstream; never a stack trace.',
  '- Every `/v1` route needs `Authorization: Bearer <device token>` except `POST /v1/devices`, which needs the app\'s `X-App-Key`.',
  '- `/agent` routes (the partner agent, when the config has an `agent` section) need `Authorization: Bearer <partner secret>` and `Kep-AgentSession`.',
  '- `/admin` routes are served only on the ops listener (`PASSGATE_METRICS_PORT`, beside `/metrics`; each of those paths names that server), only when `PASSGATE_ADMIN_KEY` is set, and need `Authorization: Bearer <PASSGATE_ADMIN_KEY>`. The public port answers 404 for them.',
  '- Paths match exactly: case, percent-encoding, double slashes, dot segments and trailing slashes are not folded (another spelling is a 404).',
  '- Prometheus metrics are served at `GET /metrics` on the ops listener (`PASSGATE_METRICS_PORT`), not on this one.',
].join('\n');

/** SPEC §7: the admin API lives on the ops listener, never on the public port. */
const opsServers: ServerObject[] = [
  {
    url: 'http://{host}:{port}',
    description: 'The ops listener (beside /metrics; not routed by any ingress)',
    variables: { host: { default: '127.0.0.1' }, port: { default: '9464', description: 'PASSGATE_METRICS_PORT' } },
  },
];

const onOpsListener = (path: string) => path === '/metrics' || path.startsWith('/admin/');

const tags = [
  { name: 'devices', description: 'Device registration and device tokens.' },
  { name: 'sign-in', description: 'TV provider (MVPD) sign-in with a code shown on the TV.' },
  { name: 'entitlement', description: 'Preauthorize, authorize, logout.' },
  { name: 'drm', description: 'License tokens and the token-proxy license route.' },
  { name: 'drm-callback', description: 'Legacy callback mode, called by the license service.' },
  { name: 'playready', description: 'PlayReady revocation lists for in-cluster license servers.' },
  { name: 'activation', description: 'Second-screen HTML pages.' },
  { name: 'agent', description: 'The partner agent: DRM authenticate and decrypt for enterprise file sharing (only with an agent section in the config).' },
  { name: 'admin', description: 'Operator API.' },
  { name: 'operations', description: 'Probes and service information.' },
];

const securitySchemes = {
  deviceToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWS', description: 'The token POST /v1/devices returns.' },
  appKey: { type: 'apiKey', in: 'header', name: 'X-App-Key', description: 'One key per app/platform, from the configuration.' },
  adminKey: { type: 'http', scheme: 'bearer', description: 'PASSGATE_ADMIN_KEY.' },
  partnerSecret: { type: 'http', scheme: 'bearer', description: 'The partner\'s secret (config agent.partners).' },
};

/** The API reference served at GET /openapi.json (SPEC §11), built once at start-up. */
export function buildOpenApiDocument(version: string): OpenApiDocument {
  const parts: ApiPart[] = [pagesApi(), appApi(), drmApi(), agentApi()];
  const paths: Record<string, PathItem> = {};
  const schemas: Record<string, JsonSchema> = { ...responseSchemas };
  for (const part of parts) {
    for (const [name, schema] of Object.entries(part.schemas)) {
      if (schemas[name]) throw new Error(`openapi: schema ${name} is defined twice`);
      schemas[name] = schema;
    }
    for (const [path, item] of Object.entries(part.paths)) {
      const merged: PathItem = { ...paths[path] };
      for (const [method, op] of Object.entries(item) as [HttpMethod, NonNullable<PathItem[HttpMethod]>][]) {
        if (merged[method]) throw new Error(`openapi: ${method.toUpperCase()} ${path} is described twice`);
        merged[method] = op;
      }
      paths[path] = onOpsListener(path) ? { ...merged, servers: opsServers } : merged;
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'passgate', version, description },
    servers: [{ url: '/' }],
    tags,
    paths,
    components: { schemas, securitySchemes },
  };
}
