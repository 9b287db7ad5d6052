import { z } from 'zod';
import { problemCatalogue, type ProblemCode } from '../http/problem.js';

/** A JSON Schema (2020-12, the dialect OpenAPI 3.1 uses) as plain data. */
export type JsonSchema = { [keyword: string]: unknown };

export interface MediaType {
  schema?: JsonSchema;
  example?: unknown;
}

export interface ResponseObject {
  description: string;
  headers?: Record<string, JsonSchema>;
  content?: Record<string, MediaType>;
}

export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  description?: string;
  schema: JsonSchema;
}

export interface RequestBodyObject {
  required: boolean;
  description?: string;
  content: Record<string, MediaType>;
}

export interface OperationObject {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  security: Record<string, string[]>[];
  parameters?: ParameterObject[];
  requestBody?: RequestBodyObject;
  responses: Record<string, ResponseObject>;
}

export type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'patch';
export interface ServerObject {
  url: string;
  description?: string;
  variables?: Record<string, { default: string; description?: string }>;
}

/** A path's operations; `servers` when the path is served elsewhere than the document's server. */
export type PathItem = Partial<Record<HttpMethod, OperationObject>> & { servers?: ServerObject[] };

/** One area of the API: its paths and the component schemas they refer to. */
export interface ApiPart {
  paths: Record<string, PathItem>;
  schemas: Record<string, JsonSchema>;
}

/** The security scheme names of components.securitySchemes; `public` needs none. */
export type Access = 'deviceToken' | 'appKey' | 'adminKey' | 'partnerSecret' | 'public';

export const ref = (schema: string): JsonSchema => ({ $ref: `#/components/schemas/${schema}` });

/**
 * A request schema straight from the zod schema that validates it, on its input side (what a
 * client sends, before transforms and defaults), so the document cannot drift from validation.
 */
export function fromZod(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }) as JsonSchema;
  return json;
}

/** The query parameters of a zod object schema (every property a parameter; unknown keys are refused when the schema is strict). */
export function queryParameters(schema: z.ZodType, descriptions: Record<string, string> = {}): ParameterObject[] {
  const json = fromZod(schema);
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    ...(descriptions[name] ? { description: descriptions[name] } : {}),
    schema: property,
  }));
}

export function pathParameter(name: string, schema: z.ZodType, description: string): ParameterObject {
  return { name, in: 'path', required: true, description, schema: fromZod(schema) };
}

export function jsonBody(schemaName: string, description?: string): RequestBodyObject {
  return { required: true, ...(description ? { description } : {}), content: { 'application/json': { schema: ref(schemaName) } } };
}

export function json(description: string, schema: JsonSchema, headers?: Record<string, JsonSchema>): ResponseObject {
  return { description, ...(headers ? { headers } : {}), content: { 'application/json': { schema } } };
}

export function content(description: string, mediaType: string, schema: JsonSchema = { type: 'string' }, headers?: Record<string, JsonSchema>): ResponseObject {
  return { description, ...(headers ? { headers } : {}), content: { [mediaType]: { schema } } };
}

export const noContent = (description: string): ResponseObject => ({ description });

const header = (description: string, schema: JsonSchema = { type: 'string' }): JsonSchema => ({ description, schema });

export const headers = {
  retryAfter: header('Seconds to wait before retrying.', { type: 'integer', minimum: 1 }),
  location: header('Where the browser goes next.'),
  etag: header('The content\'s entity tag (the same on every replica).'),
  lastModified: header('When the content last changed (HTTP date).'),
};

/** What every route may answer on a bug: the generic 500 (the request id finds it in the logs). */
const alwaysPossible: ProblemCode[] = ['internal_error'];

/** Error responses, one per status, each listing (as an enum on `code`) the catalogue codes the route answers with it. */
export function problemResponses(codes: readonly ProblemCode[]): Record<string, ResponseObject> {
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of new Set([...codes, ...alwaysPossible])) {
    const status = problemCatalogue[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, ResponseObject> = {};
  for (const [status, listed] of [...byStatus].sort(([a], [b]) => a - b)) {
    const extraHeaders: Record<string, JsonSchema> | undefined =
      status === 401
        ? { 'WWW-Authenticate': header('The authentication scheme to use.') }
        : status === 429 || status === 503
          ? { 'Retry-After': headers.retryAfter }
          : undefined;
    responses[String(status)] = {
      description: listed.map((code) => `\`${code}\`: ${problemCatalogue[code].title}`).join('; '),
      ...(extraHeaders ? { headers: extraHeaders } : {}),
      content: { 'application/problem+json': { schema: { allOf: [ref('Problem'), { properties: { code: { enum: listed } } }] } } },
    };
  }
  return responses;
}

const security: Record<Access, Record<string, string[]>[]> = {
  deviceToken: [{ deviceToken: [] }],
  appKey: [{ appKey: [] }],
  adminKey: [{ adminKey: [] }],
  partnerSecret: [{ partnerSecret: [] }],
  public: [],
};

export interface OperationSpec {
  id: string;
  summary: string;
  description?: string;
  tag: string;
  access: Access;
  parameters?: ParameterObject[];
  body?: RequestBodyObject;
  /** The answers that are not problem+json, by status. */
  responses: Record<string, ResponseObject>;
  /** The problem codes the route can answer (internal_error is added). */
  errors: readonly ProblemCode[];
}

export function operation(spec: OperationSpec): OperationObject {
  const problems = problemResponses(spec.errors);
  for (const status of Object.keys(problems)) {
    if (spec.responses[status]) throw new Error(`openapi: ${spec.id} describes status ${status} both as a problem and otherwise`);
  }
  const responses = Object.fromEntries(Object.entries({ ...spec.responses, ...problems }).sort(([a], [b]) => a.localeCompare(b)));
  return {
    operationId: spec.id,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    tags: [spec.tag],
    security: security[spec.access],
    ...(spec.parameters?.length ? { parameters: spec.parameters } : {}),
    ...(spec.body ? { requestBody: spec.body } : {}),
    responses,
  };
}

/** Error codes shared by many routes. */
export const errorsOf = {
  /** validate(schema) and the JSON body parser. */
  jsonBody: ['invalid_json', 'invalid_body', 'unsupported_media_type', 'payload_too_large'],
  /** requireDevice: a bad token, or a store that cannot say whether it is revoked. */
  device: ['invalid_device_token', 'store_unavailable'],
  /** A call to the Pass service (adobe-pass.md: enhanced errors carried in `upstream`). */
  pass: ['upstream_throttled', 'upstream_rejected', 'upstream_misconfigured', 'upstream_unavailable', 'unknown_mvpd'],
  /** The DRM license gate's refusals (SPEC §4), fail-closed when the store is down. */
  gate: ['no_permit', 'permit_expired', 'permit_not_yet_valid', 'logged_out', 'permit_denied', 'content_not_in_resource', 'resource_not_in_catalogue', 'device_revoked', 'store_unavailable'],
  /** requireAdmin; not_found: the admin API is off (no PASSGATE_ADMIN_KEY); every admin action reads or writes the store. */
  admin: ['unauthorized', 'not_found', 'store_unavailable'],
} as const satisfies Record<string, readonly ProblemCode[]>;
