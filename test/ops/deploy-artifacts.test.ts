import test, { type ExecutionContext } from 'ava';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { basename, delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfig, type Env } from '../../src/config/load.js';
import { envSchema } from '../../src/config/schema.js';
import { createStore, StoreUnavailableError } from '../../src/infra/store.js';
import { drmSection, simRevInfo } from '../helpers/drm-config.js';
import { externalSeries, metricNames } from '../helpers/promql.js';
import { tempDir } from '../helpers/with-app.js';
import { withPassgate } from '../helpers/with-passgate.js';
import { freePort } from '../helpers/with-redis.js';

/**
 * The deployment artifacts (k8s/, grafana/) checked against the code they deploy: manifests that
 * kustomize can resolve, a Deployment whose probes, ports and variables passgate really has, a
 * config file that passgate's own loader accepts, and a dashboard and alerts whose metric names
 * a running passgate exposes (a renamed metric fails here, not silently in Grafana).
 *
 * The file-level checks run everywhere. Where kubectl (or kustomize) is on PATH the overlays are
 * also built for real (and the output checked against the Kubernetes schemas); that test says with
 * t.log which path it took. In CI (CI=true) a missing kubectl/kustomize is a failure, never a quiet
 * pass (.ci/run installs it). The alerts themselves, and promtool, are test/ops/alerts.test.ts.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const k8s = join(root, 'k8s');
/** Generates the dashboards' ConfigMap for k8s/components/kube-prometheus-stack. */
const grafanaKustomization = join(root, 'grafana', 'kustomization.yaml');

type Json = Record<string, unknown>;
type Manifest = Json & { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: Json };

interface EnvVar {
  name: string;
  value?: string | null;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  ports: Array<{ name: string; containerPort: number }>;
  env: EnvVar[];
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Json & { capabilities?: { drop?: string[] } };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  volumeMounts: Array<{ name: string; mountPath: string }>;
}
interface Volume {
  name: string;
  emptyDir?: Json;
  configMap?: { name: string };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
}
interface PodSpec {
  terminationGracePeriodSeconds: number;
  securityContext: Json & { seccompProfile?: { type: string } };
  topologySpreadConstraints?: unknown[];
  affinity?: { podAntiAffinity?: unknown };
  containers: Container[];
  volumes: Volume[];
}
interface DeploymentSpec {
  /** Left to the HPA: a value here would reset the scaled count on every apply. */
  replicas?: number;
  selector: { matchLabels: Record<string, string> };
  template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
}

// ── reading the files ──────────────────────────────────────────────────────────────────────

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

/** Every document of a YAML file; throws naming the file and the parser's first error. */
function documents(path: string): unknown[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${relative(root, path)}: ${doc.errors[0]?.message}`);
    return doc.toJS() as unknown;
  });
}

/** A Kubernetes object (kustomization and component files have kind and apiVersion too, but are not applied). */
const isManifest = (doc: unknown): doc is Manifest =>
  typeof doc === 'object' && doc !== null && 'kind' in doc && 'apiVersion' in doc && !['Kustomization', 'Component'].includes(String((doc as { kind: unknown }).kind));

function manifestsIn(dir: string): Manifest[] {
  return yamlFiles(dir).flatMap((path) => documents(path).filter(isManifest));
}

function one(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0] as Manifest;
}

const base = manifestsIn(join(k8s, 'base'));
const redis = manifestsIn(join(k8s, 'redis'));
const deployment = one(base, 'Deployment', 'passgate');
const deploymentSpec = deployment.spec as unknown as DeploymentSpec;
const pod = deploymentSpec.template.spec;
const container = pod.containers.find((c) => c.name === 'passgate') as Container;
const secretTemplate = one(base, 'Secret', 'passgate-secrets') as Manifest & { stringData: Record<string, string> };
const baseKustomization = parse(readFileSync(join(k8s, 'base', 'kustomization.yaml'), 'utf8')) as Json & {
  configMapGenerator: Array<{ name: string; files: string[] }>;
};

/** The file behind the generated ConfigMap the Deployment mounts, and where it is mounted. */
function configMapFile(): { path: string; mountPath: string } {
  const volume = pod.volumes.find((v) => v.configMap) as Volume;
  const generator = baseKustomization.configMapGenerator.find((g) => g.name === volume.configMap?.name);
  if (!generator) throw new Error(`no configMapGenerator named ${volume.configMap?.name}`);
  const mount = container.volumeMounts.find((m) => m.name === volume.name);
  return { path: join(k8s, 'base', generator.files[0] as string), mountPath: mount?.mountPath as string };
}

/** The keyring's Secret: generated by each overlay from its never-committed `keyring` file (README "Keys"). */
const KEYS_SECRET = 'passgate-keys';

/** Mounted secret files: absolute path in the pod → the Secret and key it holds. */
function secretFiles(): Map<string, { secret: string; key: string }> {
  const files = new Map<string, { secret: string; key: string }>();
  for (const volume of pod.volumes.filter((v) => v.secret)) {
    const mount = container.volumeMounts.find((m) => m.name === volume.name);
    for (const item of volume.secret?.items ?? []) files.set(`${mount?.mountPath}/${item.path}`, { secret: volume.secret?.secretName as string, key: item.key });
  }
  return files;
}

/** `{ env: NAME }` and `{ file: /path }` references anywhere in a parsed config file. */
function secretRefs(value: unknown, found: { env: string[]; file: string[] } = { env: [], file: [] }) {
  if (Array.isArray(value)) for (const item of value) secretRefs(item, found);
  else if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value);
    const ref = value as Record<string, unknown>;
    if (keys.length === 1 && typeof ref.env === 'string') found.env.push(ref.env);
    else if (keys.length === 1 && typeof ref.file === 'string') found.file.push(ref.file);
    else for (const child of Object.values(value)) secretRefs(child, found);
  }
  return found;
}

/** The container env after an overlay's strategic-merge patch (env merges by name; null deletes). */
function patchedEnv(env: EnvVar[], patch: EnvVar[] | undefined): EnvVar[] {
  const merged = env.map((e) => ({ ...e }));
  for (const change of patch ?? []) {
    const target = merged.find((e) => e.name === change.name);
    if (!target) {
      merged.push({ ...change });
      continue;
    }
    for (const [key, value] of Object.entries(change) as Array<[keyof EnvVar, never]>) {
      if (value === null) delete target[key];
      else target[key] = value;
    }
  }
  return merged;
}

/** Variables passgate reads: its env schema plus the `{ env: }` references of the config file. */
function variablesReadByPassgate(): Set<string> {
  const refs = secretRefs(parse(readFileSync(configMapFile().path, 'utf8')));
  return new Set([...Object.keys(envSchema.shape), ...refs.env]);
}

function overlayEnv(overlay: string): EnvVar[] {
  const patch = manifestsIn(join(k8s, 'overlays', overlay)).find((m) => m.kind === 'Deployment');
  const patchContainer = (patch?.spec as unknown as DeploymentSpec | undefined)?.template.spec.containers.find((c) => c.name === container.name);
  return patchedEnv(container.env, patchContainer?.env);
}

// ── PromQL ──────────────────────────────────────────────────────────────────────────────────

/** Label names used in `metric{…}` matchers, per metric. */
function matcherLabels(expr: string): Array<{ metric: string; labels: string[] }> {
  return [...expr.matchAll(/([A-Za-z_:][\w:]*)\{([^}]*)\}/g)].map((m) => ({
    metric: m[1] as string,
    labels: [...(m[2] as string).matchAll(/([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1] as string),
  }));
}

/** Label names of `by (…)` / `without (…)` clauses. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => (m[1] as string).split(',').map((l) => l.trim()).filter(Boolean));
}

/** The argument text of every rate()/irate()/increase() call. */
function rangeFunctionArguments(expr: string): Array<{ fn: string; argument: string }> {
  const calls: Array<{ fn: string; argument: string }> = [];
  for (const match of expr.matchAll(/\b(rate|irate|increase)\s*\(/g)) {
    let depth = 1;
    let i = (match.index as number) + match[0].length;
    const start = i;
    for (; i < expr.length && depth > 0; i++) {
      if (expr[i] === '(') depth++;
      else if (expr[i] === ')') depth--;
    }
    calls.push({ fn: match[1] as string, argument: expr.slice(start, i - 1) });
  }
  return calls;
}

interface Exposition {
  types: Map<string, string>;
  /** Label names seen on each family's samples. */
  labels: Map<string, Set<string>>;
}

/** The Prometheus text format: `# TYPE` lines name the families, samples carry their labels. */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    const sample = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? \S+/.exec(line);
    if (!sample) continue;
    const name = sample[1] as string;
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    const seen = labels.get(family) ?? new Set<string>();
    for (const label of (sample[2] ?? '').matchAll(/([A-Za-z_]\w*)="(?:[^"\\]|\\.)*"/g)) if (label[1] !== 'le') seen.add(label[1] as string);
    labels.set(family, seen);
  }
  return { types, labels };
}

/** A family, or a histogram's (or summary's) _bucket/_sum/_count series. */
function familyOf(name: string, exposition: Exposition): string | undefined {
  if (exposition.types.has(name)) return name;
  const suffix = /^(.*)_(bucket|sum|count)$/.exec(name);
  const type = suffix ? exposition.types.get(suffix[1] as string) : undefined;
  if (type === 'histogram' || (type === 'summary' && suffix?.[2] !== 'bucket')) return suffix?.[1];
  return undefined;
}

/** Labels Prometheus adds from the scrape target (ServiceMonitor), not passgate. */
const targetLabels = new Set(['namespace', 'pod', 'job', 'instance', 'service', 'endpoint', 'container']);

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; definition?: string }> };
}

const readDashboard = () => JSON.parse(readFileSync(join(root, 'grafana', 'dashboards', 'passgate.json'), 'utf8')) as Dashboard;
const allPanels = (dashboard: Dashboard): Panel[] => dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');

/** Metric names in panel targets and in the template variables' label_values(metric…) queries. */
function dashboardMetrics(dashboard: Dashboard): string[] {
  const names = new Set(allPanels(dashboard).flatMap((p) => (p.targets ?? []).flatMap((target) => metricNames(target.expr))));
  for (const variable of dashboard.templating.list) {
    const query = typeof variable.query === 'string' ? variable.query : ((variable.query as { query?: string } | undefined)?.query ?? '');
    const metric = /label_values\(\s*([A-Za-z_:][\w:]*)/.exec(query);
    if (metric) names.add(metric[1] as string);
  }
  return [...names];
}

/** Alerting and recording rules (a recording rule's `record` is a series the others may read). */
const ruleExpressions = () => {
  const rule = one(base, 'PrometheusRule', 'passgate').spec as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return rule.groups.flatMap((g) => g.rules);
};

/** What the dashboard and the alerts get wrong about a running passgate's metrics. */
function metricProblems(exposition: Exposition, dashboard: Dashboard) {
  const recorded = new Set(ruleExpressions().flatMap((r) => (r.record ? [r.record] : [])));
  const known = (name: string) => familyOf(name, exposition) !== undefined || recorded.has(name);
  const used = new Set(dashboardMetrics(dashboard).map((name) => familyOf(name, exposition) ?? name));
  return {
    unknownInDashboard: dashboardMetrics(dashboard).filter((name) => !known(name)),
    unknownInRules: ruleExpressions().flatMap((r) => metricNames(r.expr)).filter((name) => !known(name) && !externalSeries.has(name)),
    missingFromDashboard: [...exposition.types.keys()].filter((family) => family.startsWith('passgate_') && !used.has(family)),
  };
}

// ── the manifests ───────────────────────────────────────────────────────────────────────────

test('every YAML file under k8s/ and grafana/ parses, and every manifest has apiVersion, kind and a name', (t) => {
  const files = [...yamlFiles(k8s), ...yamlFiles(join(root, 'grafana'))];
  t.true(files.length >= 20, `found ${files.length}`);
  for (const path of files) {
    // documents() throws naming the file and the parser's error.
    for (const doc of documents(path).filter(isManifest)) {
      t.is(typeof doc.apiVersion, 'string', relative(root, path));
      t.is(typeof doc.metadata?.name, 'string', relative(root, path));
    }
  }
  const kinds = new Set([...base, ...redis].map((m) => `${m.apiVersion} ${m.kind}`));
  for (const kind of [
    'apps/v1 Deployment',
    'v1 Service',
    'autoscaling/v2 HorizontalPodAutoscaler',
    'policy/v1 PodDisruptionBudget',
    'networking.k8s.io/v1 NetworkPolicy',
    'monitoring.coreos.com/v1 ServiceMonitor',
    'monitoring.coreos.com/v1 PrometheusRule',
    'v1 Secret',
    'apps/v1 StatefulSet',
  ]) {
    t.true(kinds.has(kind), kind);
  }
});

test('kustomizations list only existing files, list every manifest beside them, and never the Secret template', async (t) => {
  const kustomizations = [...yamlFiles(k8s), grafanaKustomization].filter((path) => basename(path) === 'kustomization.yaml');
  t.deepEqual(kustomizations.map((p) => relative(k8s, p)).sort(), [
    '../grafana/kustomization.yaml',
    'base/kustomization.yaml',
    'components/ingress/kustomization.yaml',
    'components/kube-prometheus-stack/kustomization.yaml',
    'overlays/dev/kustomization.yaml',
    'overlays/prod/kustomization.yaml',
    'redis/kustomization.yaml',
  ]);
  for (const path of kustomizations) {
    const dir = dirname(path);
    const k = parse(readFileSync(path, 'utf8')) as {
      kind: string;
      resources?: string[];
      components?: string[];
      patches?: Array<{ path?: string }>;
      configMapGenerator?: Array<{ files?: string[] }>;
      secretGenerator?: Array<{ files?: string[] }>;
    };
    t.is(k.kind, relative(k8s, path).startsWith('components/') ? 'Component' : 'Kustomization', relative(k8s, path));
    for (const component of k.components ?? []) {
      const file = join(dir, component, 'kustomization.yaml');
      t.is(existsSync(file) && (parse(readFileSync(file, 'utf8')) as { kind: string }).kind, 'Component', `${relative(k8s, path)}: component ${component}`);
    }
    const resources = k.resources ?? [];
    const patches = (k.patches ?? []).flatMap((p) => (p.path ? [p.path] : []));
    const generated = (k.configMapGenerator ?? []).flatMap((g) => g.files ?? []).map((f) => f.split('=').pop() as string);
    // A secretGenerator's file holds key material: the operator creates it, git must never take it.
    for (const entry of (k.secretGenerator ?? []).flatMap((g) => g.files ?? []).map((f) => f.split('=').pop() as string)) {
      const ignored = await run('git', ['check-ignore', '-q', join(dir, entry)], { cwd: root }).then(() => true, () => false);
      t.true(ignored, `${relative(k8s, path)}: the secretGenerator file ${entry} is .gitignore'd`);
    }
    for (const entry of resources) {
      const target = join(dir, entry);
      t.true(existsSync(target), `${relative(k8s, path)} lists missing ${entry}`);
      if (existsSync(target) && statSync(target).isDirectory()) t.true(existsSync(join(target, 'kustomization.yaml')), `${entry} is not a kustomization`);
    }
    for (const entry of [...patches, ...generated]) t.true(existsSync(join(dir, entry)), `${relative(k8s, path)} lists missing ${entry}`);
    t.false(resources.some((r) => r.includes('secret.template')), 'the Secret template is never applied');

    // A manifest beside a kustomization that it does not use would silently not be deployed.
    const used = new Set([...resources, ...patches, ...generated, 'kustomization.yaml', 'secret.template.yaml']);
    const unused = readdirSync(dir).filter((name) => /\.ya?ml$/.test(name) && !used.has(name));
    t.deepEqual(unused, [], relative(k8s, path));
  }
});

const hpaSpec = (manifests: Manifest[]) => one(manifests, 'HorizontalPodAutoscaler', 'passgate').spec as unknown as HpaSpec;
interface HpaSpec {
  scaleTargetRef: Json;
  minReplicas: number;
  maxReplicas: number;
  metrics: Array<{ type: string; resource?: { name: string } }>;
}

test('the Deployment: ≥ 2 replicas (the HPA\'s floor), probes on /livez and /readyz on a declared named port, ports the env sets', (t) => {
  t.is(deploymentSpec.replicas, undefined, 'no replicas: the HPA owns the count');
  t.true(hpaSpec(base).minReplicas >= 2, 'the HPA keeps at least two replicas');
  const ports = new Map(container.ports.map((p) => [p.name, p.containerPort]));
  t.is(ports.get('http'), 8080);
  t.is(ports.get('metrics'), 9464);
  const env = new Map(container.env.map((e) => [e.name, e.value]));
  t.is(env.get('PASSGATE_PORT'), String(ports.get('http')));
  t.is(env.get('PASSGATE_METRICS_PORT'), String(ports.get('metrics')));

  const probes = { livenessProbe: '/livez', readinessProbe: '/readyz', startupProbe: '/livez' } as const;
  for (const [probe, path] of Object.entries(probes) as Array<[keyof typeof probes, string]>) {
    const httpGet = container[probe]?.httpGet;
    t.is(httpGet?.path, path, probe);
    t.is(httpGet?.port, 'http', `${probe} uses the named http port`);
  }

  for (const kind of ['requests', 'limits'] as const) {
    t.truthy(container.resources[kind]?.cpu, `cpu ${kind}`);
    t.truthy(container.resources[kind]?.memory, `memory ${kind}`);
  }
  t.true(Boolean(pod.topologySpreadConstraints?.length) || Boolean(pod.affinity?.podAntiAffinity), 'replicas are spread');

  const service = one(base, 'Service', 'passgate').spec as { selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: string }> };
  t.deepEqual(
    service.ports.map((p) => [p.name, p.port, p.targetPort]),
    [
      ['http', 8080, 'http'],
      ['metrics', 9464, 'metrics'],
    ],
  );
  t.like(deploymentSpec.template.metadata.labels, service.selector);
  t.like(deploymentSpec.template.metadata.labels, deploymentSpec.selector.matchLabels);

  const monitor = one(base, 'ServiceMonitor').spec as { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> };
  t.like(one(base, 'Service', 'passgate').metadata.labels, monitor.selector.matchLabels);
  t.deepEqual(
    monitor.endpoints.map((e) => [e.port, e.path]),
    [['metrics', '/metrics']],
  );
});

test('the pod is non-root with a read-only root filesystem, no capabilities, RuntimeDefault seccomp and only /tmp writable', (t) => {
  t.is(pod.securityContext.runAsNonRoot, true);
  t.is(pod.securityContext.seccompProfile?.type, 'RuntimeDefault');
  t.like(container.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true });
  t.deepEqual(container.securityContext.capabilities?.drop, ['ALL']);

  const emptyDirs = pod.volumes.filter((v) => v.emptyDir).map((v) => v.name);
  const writable = container.volumeMounts.filter((m) => emptyDirs.includes(m.name)).map((m) => m.mountPath);
  t.deepEqual(writable, ['/tmp']);
  const dataDir = container.env.find((e) => e.name === 'PASSGATE_DATA_DIR')?.value;
  t.true(dataDir === undefined || dataDir === null || dataDir.startsWith('/tmp/'), 'the data dir is on the writable volume');

  for (const set of redis.filter((m) => m.kind === 'StatefulSet')) {
    const spec = (set.spec as unknown as DeploymentSpec).template.spec;
    t.is(spec.securityContext.runAsNonRoot, true);
    for (const c of spec.containers) t.like(c.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
  }
});

test('termination grace covers the preStop sleep plus passgate\'s own drain (src/main.ts)', (t) => {
  const drain = /const drainTimeoutMs = ([\d_]+);/.exec(readFileSync(join(root, 'src', 'main.ts'), 'utf8'));
  t.truthy(drain, 'src/main.ts declares drainTimeoutMs');
  const drainSeconds = Number((drain?.[1] ?? '').replaceAll('_', '')) / 1000;
  const command = container.lifecycle?.preStop?.exec?.command ?? [];
  t.is(command[0], 'sleep');
  const sleep = Number(command[1]);
  t.true(sleep >= 1 && sleep <= 15, `preStop sleeps ${sleep} s`);
  // Closing the store and flushing logs after the drain needs a few seconds more.
  t.true(pod.terminationGracePeriodSeconds >= sleep + drainSeconds + 5, `${pod.terminationGracePeriodSeconds} s grace for ${sleep} s + ${drainSeconds} s`);
});

test('HPA, PodDisruptionBudget and NetworkPolicy fit the Deployment', (t) => {
  const labels = deploymentSpec.template.metadata.labels;
  const hpa = hpaSpec(base);
  t.like(hpa.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'passgate' });
  t.true(hpa.minReplicas >= 2 && hpa.maxReplicas > hpa.minReplicas);
  t.deepEqual(hpa.metrics.map((m) => m.resource?.name), ['cpu']);

  const pdb = one(base, 'PodDisruptionBudget').spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
  t.is(pdb.minAvailable, 1);
  t.like(labels, pdb.selector.matchLabels);

  type Port = { port: number | string; protocol: string };
  type Peer = { namespaceSelector?: { matchLabels?: Record<string, string> }; podSelector?: { matchLabels?: Record<string, string> }; ipBlock?: { cidr: string } };
  const policy = one(base, 'NetworkPolicy', 'passgate').spec as {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: string[];
    ingress: Array<{ from: Peer[]; ports: Port[] }>;
    egress: Array<{ to: Peer[]; ports: Port[] }>;
  };
  t.like(labels, policy.podSelector.matchLabels);
  t.deepEqual(policy.policyTypes, ['Ingress', 'Egress']);
  const ingressTo = (port: string) => policy.ingress.filter((rule) => rule.ports.some((p) => p.port === port));
  t.deepEqual(ingressTo('http').flatMap((r) => r.from), [{ namespaceSelector: {} }]);
  t.deepEqual(ingressTo('metrics').flatMap((r) => r.from), [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);

  const egressPorts = policy.egress.flatMap((rule) => rule.ports.map((p) => `${p.protocol}/${p.port}`));
  for (const port of ['UDP/53', 'TCP/53', 'TCP/6379', 'TCP/443']) t.true(egressPorts.includes(port), port);
  const dns = policy.egress.find((rule) => rule.ports.some((p) => p.port === 53));
  t.deepEqual(dns?.to[0]?.podSelector?.matchLabels, { 'k8s-app': 'kube-dns' });
  // NodeLocal DNSCache: pods' queries go to the node-local agent's link-local address instead.
  t.true(dns?.to.some((peer) => peer.ipBlock?.cidr === '169.254.20.10/32'), 'DNS to NodeLocal DNSCache (169.254.20.10)');
  t.deepEqual(dns?.ports.map((p) => `${p.protocol}/${p.port}`).sort(), ['TCP/53', 'UDP/53']);

  // Redis: its port for passgate pods only, the exporter's for Prometheus only.
  const redisPolicy = one(redis, 'NetworkPolicy').spec as { ingress: Array<{ from: Peer[]; ports: Port[] }>; egress: unknown[] };
  const redisIngressTo = (port: string) => redisPolicy.ingress.filter((rule) => rule.ports.some((p) => p.port === port)).flatMap((r) => r.from);
  const redisClients = redisIngressTo('redis');
  t.is(redisClients.length, 1);
  t.like(labels, redisClients[0]?.podSelector?.matchLabels ?? { none: 'no podSelector' }, 'only passgate pods reach Redis');
  t.deepEqual(redisIngressTo('metrics'), [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
  t.deepEqual(redisPolicy.ingress.flatMap((rule) => rule.ports.map((p) => p.port)).sort(), ['metrics', 'redis']);
  t.deepEqual(redisPolicy.egress, []);
});

// ── the in-cluster Redis (k8s/redis) ────────────────────────────────────────────────────────

interface RedisContainer extends Container {
  image: string;
  args: string[];
  readinessProbe?: Probe & { exec?: { command: string[] } };
}
const redisPod = (one(redis, 'StatefulSet', 'passgate-redis').spec as unknown as DeploymentSpec).template.spec;
const redisContainer = (name: string) => redisPod.containers.find((c) => c.name === name) as RedisContainer;
const REDIS_SECRET = { name: 'passgate-redis', key: 'password' };

/** What the kubelet does to a container's args: `$(NAME)` becomes the value of its variable NAME. */
const expandArgs = (args: string[], env: Record<string, string>) => args.map((arg) => arg.replace(/\$\(([A-Za-z_]\w*)\)/g, (ref, name: string) => env[name] ?? ref));

test('the in-cluster Redis: a password from the passgate-redis Secret, and redis_exporter beside it for a ServiceMonitor whose job is passgate-redis', (t) => {
  const server = redisContainer('redis');
  t.deepEqual(redisPod.containers.map((c) => c.name), ['redis', 'redis-exporter']);
  const secretEnv = (c: RedisContainer) => c.env.filter((e) => e.valueFrom?.secretKeyRef).map((e) => [e.name, e.valueFrom?.secretKeyRef]);
  t.deepEqual(secretEnv(server), [
    ['REDIS_PASSWORD', REDIS_SECRET],
    ['REDISCLI_AUTH', REDIS_SECRET],
  ]);
  t.is(server.args[server.args.indexOf('--requirepass') + 1], '$(REDIS_PASSWORD)');
  t.deepEqual(server.readinessProbe?.exec?.command, ['redis-cli', 'ping'], 'the probe authenticates through REDISCLI_AUTH');
  const template = one(redis, 'Secret', REDIS_SECRET.name) as Manifest & { stringData: Record<string, string> };
  t.deepEqual(template.stringData, { password: 'REPLACE_ME' });

  const exporter = redisContainer('redis-exporter');
  t.regex(exporter.image, /^oliver006\/redis_exporter:v\d+\.\d+\.\d+$/);
  t.deepEqual(exporter.ports, [{ name: 'metrics', containerPort: 9121, protocol: 'TCP' }]);
  t.deepEqual(secretEnv(exporter), [['REDIS_PASSWORD', REDIS_SECRET]]);
  const redisPort = server.ports.find((p) => p.name === 'redis')?.containerPort;
  t.true(exporter.args.includes(`--redis.addr=redis://127.0.0.1:${redisPort}`), 'the exporter reads the Redis of its own pod');
  t.like(exporter.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true });

  const service = one(redis, 'Service', 'passgate-redis') as Manifest & { spec: { ports: Array<{ name: string; port: number; targetPort: string }> } };
  t.deepEqual(service.spec.ports.find((p) => p.name === 'metrics'), { name: 'metrics', port: 9121, targetPort: 'metrics', protocol: 'TCP' });
  const monitor = one(redis, 'ServiceMonitor', 'passgate-redis').spec as { jobLabel?: string; selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> };
  t.like(service.metadata.labels, monitor.selector.matchLabels);
  t.deepEqual(monitor.endpoints.map((e) => [e.port, e.path]), [['metrics', '/metrics']]);
  // Without jobLabel the Prometheus Operator names the job after the Service: passgate-redis.
  t.is(monitor.jobLabel, undefined);
  t.is(service.metadata.name, 'passgate-redis');
});

test('the in-cluster Redis as its manifest starts it: nothing without the password, the readiness probe passes with it, passgate opens its store with the password in REDIS_URL', async (t) => {
  const server = redisContainer('redis');
  const password = randomBytes(24).toString('hex');
  const env = Object.fromEntries(server.env.map((e) => [e.name, e.valueFrom?.secretKeyRef?.name === REDIS_SECRET.name ? password : (e.value ?? '')]));
  const [command, ...args] = expandArgs(server.args, env);
  t.is(command, 'redis-server');
  t.false(args.some((arg) => arg.includes('$(')), 'every $(VAR) is one the container defines');

  // The manifest's arguments, then this machine's port and a temporary data directory.
  const dir = await tempDir(t);
  const port = await freePort();
  const child = spawn('redis-server', [...args, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const check = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
  });

  const cli = (extraEnv: Record<string, string>, ...cliArgs: string[]) => {
    const { REDISCLI_AUTH: _unset, ...machine } = process.env;
    return run('redis-cli', ['-p', String(port), ...cliArgs], { env: { ...machine, ...extraEnv } });
  };
  t.regex((await cli({}, 'ping')).stdout, /NOAUTH/, 'a client without the password is refused');
  const probe = server.readinessProbe?.exec?.command ?? [];
  t.is((await cli({ REDISCLI_AUTH: env.REDISCLI_AUTH as string }, ...probe.slice(1))).stdout.trim(), 'PONG');

  const logger = pino({ level: 'silent' });
  const options = { dataDir: dir, logger, keyPrefix: 'deploy-artifacts', connectTimeoutMs: 20_000 };
  const store = await createStore({ ...options, redisUrl: `redis://:${password}@127.0.0.1:${port}` });
  await store.disconnect();
  // Refused (it would otherwise retry until connectTimeoutMs; redis-cli above showed the refusal).
  await t.throwsAsync(createStore({ ...options, connectTimeoutMs: 3000, redisUrl: `redis://127.0.0.1:${port}` }), { instanceOf: StoreUnavailableError });
});

test('overlays: prod scales out on a managed Redis with bigger pods; dev adds the in-cluster Redis', (t) => {
  const prod = parse(readFileSync(join(k8s, 'overlays', 'prod', 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  const dev = parse(readFileSync(join(k8s, 'overlays', 'dev', 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  t.true(dev.resources.includes('../../redis'));
  t.false(prod.resources.includes('../../redis'));

  const prodDeployment = manifestsIn(join(k8s, 'overlays', 'prod')).find((m) => m.kind === 'Deployment')?.spec as unknown as DeploymentSpec;
  const devDeployment = manifestsIn(join(k8s, 'overlays', 'dev')).find((m) => m.kind === 'Deployment')?.spec as unknown as DeploymentSpec;
  t.is(prodDeployment.replicas, undefined, 'prod leaves the count to its HPA');
  t.is(devDeployment.replicas, undefined, 'dev leaves the count to its HPA');
  const prodContainer = prodDeployment.template.spec.containers[0] as Container;
  t.true(parseMemory(prodContainer.resources.limits?.memory) > parseMemory(container.resources.limits?.memory));
  const redisUrl = overlayEnv('prod').find((e) => e.name === 'REDIS_URL');
  t.deepEqual(redisUrl, { name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'passgate-secrets', key: 'redis-url' } } });
  const prodHpa = hpaSpec(manifestsIn(join(k8s, 'overlays', 'prod')));
  const devHpa = hpaSpec(manifestsIn(join(k8s, 'overlays', 'dev')));
  t.true(prodHpa.minReplicas >= 4 && prodHpa.minReplicas > hpaSpec(base).minReplicas, `prod keeps ${prodHpa.minReplicas} replicas`);
  t.true(devHpa.minReplicas >= 2, `dev keeps ${devHpa.minReplicas} replicas`);
  // PDB minAvailable below the floor, or a drain could never evict a pod.
  const prodPdb = manifestsIn(join(k8s, 'overlays', 'prod')).find((m) => m.kind === 'PodDisruptionBudget')?.spec as { minAvailable: number };
  t.true(prodPdb.minAvailable < prodHpa.minReplicas);
});

const run = promisify(execFile);

/** The first of `names` found on PATH, as an absolute path. */
function onPath(...names: string[]): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) if (existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** `kustomize build DIR` or kubectl's built-in `kubectl kustomize DIR`, whichever is on PATH. */
function kustomizeTool(): { command: string; args: (dir: string) => string[] } | undefined {
  const kustomize = onPath('kustomize');
  if (kustomize) return { command: kustomize, args: (dir) => ['build', dir] };
  const kubectl = onPath('kubectl');
  if (kubectl) return { command: kubectl, args: (dir) => ['kustomize', dir] };
  return undefined;
}

const byName = (env: EnvVar[]) => [...env].sort((a, b) => a.name.localeCompare(b.name));

/**
 * A tool the ops tests need is missing. Outside CI that is a logged pass (the file-level tests
 * stand in); with CI=true it fails: CI must run the real thing (.ci/run installs it).
 */
function missingTool(t: ExecutionContext, tool: string, instead: string): void {
  if (process.env.CI === 'true') {
    t.fail(`no ${tool} on PATH and CI=true: .ci/run installs it (${instead} is not enough in CI)`);
    return;
  }
  t.log(`no ${tool} on PATH: ${instead}`);
  t.pass();
}

/**
 * Builds overlays for real from a copy of k8s/ and grafana/ with a stand-in keyring beside each
 * overlay (the operator's file, never in git); undefined, after missingTool(), without kustomize.
 */
async function overlayBuilder(t: ExecutionContext) {
  const tool = kustomizeTool();
  if (!tool) {
    missingTool(t, 'kustomize or kubectl', 'the overlays were checked at file level only, no real build');
    return undefined;
  }
  t.log(`built with ${basename(tool.command)}: ${[basename(tool.command), ...tool.args('k8s/overlays/<overlay>')].join(' ')}`);
  const copy = await tempDir(t);
  const tree = join(copy, 'k8s');
  await cp(k8s, tree, { recursive: true });
  await cp(join(root, 'grafana'), join(copy, 'grafana'), { recursive: true });
  const build = async (overlay: string, keyring = fakeKeyring) => {
    const dir = join(tree, 'overlays', overlay);
    if (existsSync(join(k8s, 'overlays', overlay))) await writeFile(join(dir, 'keyring'), `${keyring}\n`);
    const { stdout } = await run(tool.command, tool.args(dir), { maxBuffer: 16 * 1024 * 1024 });
    return parseAllDocuments(stdout).map((doc) => doc.toJS() as unknown).filter(isManifest);
  };
  return { tree, build };
}

test('dev and prod as kustomize builds them: variables passgate reads, probes, replicas left to the HPA, where Redis comes from', async (t) => {
  const builder = await overlayBuilder(t);
  if (!builder) return;
  const { build } = builder;
  const readByPassgate = variablesReadByPassgate();
  const keysVolume = (manifests: Manifest[]) => (one(manifests, 'Deployment', 'passgate').spec as unknown as DeploymentSpec).template.spec.volumes.find((v) => v.name === 'keys')?.secret?.secretName;
  for (const overlay of ['dev', 'prod'] as const) {
    const built = await build(overlay, fakeKeyring);
    const namespace = overlay === 'prod' ? 'passgate' : 'passgate-dev';
    t.deepEqual(built.filter((m) => m.kind === 'Namespace').map((m) => m.metadata.name), [namespace], overlay);
    for (const m of built.filter((m) => m.kind !== 'Namespace')) t.is((m.metadata as { namespace?: string }).namespace, namespace, `${overlay}: ${m.kind} ${m.metadata.name}`);
    // The only Secret built is the keyring's, named with a hash of the keyring, and the Deployment
    // mounts it by that name: a changed keyring is a changed pod template, so it rolls the pods.
    const secrets = built.filter((m) => m.kind === 'Secret') as Array<Manifest & { data: Record<string, string> }>;
    t.deepEqual(secrets.map((m) => m.metadata.name.replace(/-[a-z0-9]{10}$/, '')), [KEYS_SECRET], `${overlay}: passgate-secrets is applied by hand, never built`);
    t.is(Buffer.from(secrets[0]?.data.keys ?? '', 'base64').toString('utf8').trim(), fakeKeyring, overlay);

    const spec = one(built, 'Deployment', 'passgate').spec as unknown as DeploymentSpec;
    t.is(spec.replicas, undefined, `${overlay}: no replicas, the HPA owns the count`);
    const hpa = hpaSpec(built);
    t.like(hpa.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'passgate' });
    t.true(hpa.minReplicas >= (overlay === 'prod' ? 4 : 2), `${overlay}: HPA minReplicas ${hpa.minReplicas}`);
    t.true(hpa.maxReplicas > hpa.minReplicas, overlay);

    const c = spec.template.spec.containers.find((x) => x.name === 'passgate') as Container;
    t.deepEqual(c.env.map((e) => e.name).filter((name) => !readByPassgate.has(name)), [], `${overlay}: variables passgate never reads`);
    t.is(new Set(c.env.map((e) => e.name)).size, c.env.length, `${overlay}: no variable twice`);
    for (const e of c.env) t.true((e.value === undefined) !== (e.valueFrom === undefined), `${overlay}: ${e.name} has exactly one of value and valueFrom`);
    // The file-level tests' stand-in for kustomize's merge gives what kustomize gives.
    t.deepEqual(byName(c.env), byName(overlayEnv(overlay)), `${overlay}: patchedEnv() agrees with kustomize`);
    t.like(c, { livenessProbe: { httpGet: { path: '/livez', port: 'http' } }, readinessProbe: { httpGet: { path: '/readyz', port: 'http' } }, startupProbe: { httpGet: { path: '/livez', port: 'http' } } });

    // The mounted ConfigMap is the generated one (hashed name), holding passgate.yaml.
    const keysSecret = secrets[0]?.metadata.name;
    t.is(keysVolume(built), keysSecret, `${overlay}: the Deployment mounts the generated keyring Secret`);
    // Rotation step 1 (README "Keys"): a new keyring → a new Secret name → a new pod template.
    const rotated = await build(overlay, `${fakeKeyring},k2:${randomBytes(32).toString('base64')}:verify`);
    t.not(keysVolume(rotated), keysSecret, `${overlay}: a keyring change rolls the Deployment`);

    const configVolume = spec.template.spec.volumes.find((v) => v.configMap) as Volume;
    const configMap = one(built, 'ConfigMap', configVolume.configMap?.name) as Manifest & { data: Record<string, string> };
    t.regex(configMap.metadata.name, /^passgate-config-[a-z0-9]+$/);
    t.deepEqual(Object.keys(configMap.data), [basename(configMapFile().path)]);

    // REDIS_URL, password inside, from the Secret in both: the managed Redis (prod), the in-cluster one (dev).
    t.deepEqual(c.env.find((e) => e.name === 'REDIS_URL'), { name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'passgate-secrets', key: 'redis-url' } } }, overlay);
    if (overlay === 'prod') {
      t.false(built.some((m) => m.metadata.name === 'passgate-redis'), 'prod: no in-cluster Redis');
      t.is((c as unknown as { image: string }).image, 'registry.example.com/passgate:0.1.0');
      const egress = (one(built, 'NetworkPolicy', 'passgate').spec as { egress: Array<{ ports: Array<{ port: number }> }> }).egress;
      t.true(egress.some((rule) => rule.ports.some((p) => p.port === 6380)), 'prod: egress to the managed Redis');
    } else {
      const redisSpec = (one(built, 'StatefulSet', 'passgate-redis').spec as unknown as DeploymentSpec).template.spec;
      t.deepEqual(redisSpec.containers.map((x) => x.name), ['redis', 'redis-exporter']);
      t.is(one(built, 'Service', 'passgate-redis').kind, 'Service');
      t.is(one(built, 'ServiceMonitor', 'passgate-redis').kind, 'ServiceMonitor');
    }
  }
});

/** A manifest's kubernetes-models class: the Kubernetes API's, or the Prometheus Operator's CRDs. */
type Model = new (data: unknown) => { validate(): void };
async function modelOf(m: Manifest): Promise<Model | undefined> {
  const models = m.apiVersion.startsWith('monitoring.coreos.com/') ? '@kubernetes-models/prometheus-operator' : 'kubernetes-models';
  try {
    return ((await import(`${models}/${m.apiVersion}/${m.kind}`)) as Record<string, Model>)[m.kind];
  } catch {
    return undefined;
  }
}

/** Each manifest against the JSON schema of its kind (kubernetes-models), as "Kind name: problem". */
async function schemaProblems(manifests: Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  for (const m of manifests) {
    const label = `${m.kind} ${m.metadata.name}`;
    const Model = await modelOf(m);
    if (!Model) problems.push(`${label}: no schema for ${m.apiVersion} ${m.kind}`);
    else {
      try {
        new Model(m).validate();
      } catch (err) {
        problems.push(`${label}: ${(err as Error).message}`);
      }
    }
  }
  return problems;
}

interface IngressBackend {
  service: { name: string; port: { name?: string; number?: number } };
}
interface IngressSpec {
  defaultBackend?: IngressBackend;
  tls?: Array<{ hosts: string[]; secretName?: string }>;
  rules: Array<{ host: string; http: { paths: Array<{ path: string; pathType: string; backend: IngressBackend }> } }>;
}

/** The container ports (by name) an overlay's Ingress routes to, through the Service's ports. */
function ingressTargets(built: Manifest[]): string[] {
  const spec = one(built, 'Ingress', 'passgate').spec as unknown as IngressSpec;
  const backends = [...(spec.defaultBackend ? [spec.defaultBackend] : []), ...spec.rules.flatMap((rule) => rule.http.paths.map((path) => path.backend))];
  return backends.map(({ service }) => {
    const ports = (one(built, 'Service', service.name).spec as { ports: Array<{ name: string; port: number; targetPort: string }> }).ports;
    const port = ports.find((p) => p.name === service.port.name || p.port === service.port.number);
    return port?.targetPort ?? `no port ${service.port.name ?? service.port.number} on Service ${service.name}`;
  });
}

const monitoringKinds = new Set(['ServiceMonitor', 'PrometheusRule']);
const DASHBOARDS_CONFIGMAP = 'passgate-grafana-dashboards';
const dashboardFiles = () => readdirSync(join(root, 'grafana', 'dashboards')).filter((name) => name.endsWith('.json')).sort();

test('grafana/kustomization.yaml generates the dashboards\' ConfigMap from every grafana/dashboards/*.json, labelled for the Grafana sidecar', (t) => {
  const k = parse(readFileSync(grafanaKustomization, 'utf8')) as { configMapGenerator: Array<{ name: string; files: string[]; options: { disableNameSuffixHash?: boolean; labels: Record<string, string> } }> };
  const generator = k.configMapGenerator.find((g) => g.name === DASHBOARDS_CONFIGMAP);
  t.deepEqual(generator?.files.map((f) => relative('dashboards', f)).sort(), dashboardFiles());
  t.like(generator?.options, { disableNameSuffixHash: true, labels: { grafana_dashboard: '1' } });
  const component = parse(readFileSync(join(k8s, 'components', 'kube-prometheus-stack', 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  t.deepEqual(component.resources, [relative(join(k8s, 'components', 'kube-prometheus-stack'), dirname(grafanaKustomization))]);
});

test('dev and prod as kustomize builds them fit a kube-prometheus-stack and the Kubernetes schemas: release label, the dashboards\' ConfigMap, an Ingress (TLS) to the public port only', async (t) => {
  const builder = await overlayBuilder(t);
  if (!builder) return;
  const { tree, build } = builder;
  for (const overlay of ['dev', 'prod'] as const) {
    const built = await build(overlay);
    t.deepEqual(await schemaProblems(built), [], `${overlay}: every object valid against its kind's schema`);

    // A default kube-prometheus-stack selects ServiceMonitors and PrometheusRules by `release`.
    const monitoring = built.filter((m) => monitoringKinds.has(m.kind));
    const expected = ['PrometheusRule passgate', 'ServiceMonitor passgate', ...(overlay === 'dev' ? ['ServiceMonitor passgate-redis'] : [])];
    t.deepEqual(monitoring.map((m) => `${m.kind} ${m.metadata.name}`).sort(), expected, overlay);
    for (const m of monitoring) t.is(m.metadata.labels?.release, 'kube-prometheus-stack', `${overlay}: ${m.kind} ${m.metadata.name}`);

    // Its Grafana sidecar loads ConfigMaps labelled grafana_dashboard: "1": the files, as they are.
    const dashboards = one(built, 'ConfigMap', DASHBOARDS_CONFIGMAP) as Manifest & { data: Record<string, string> };
    t.is(dashboards.metadata.labels?.grafana_dashboard, '1');
    t.deepEqual(Object.keys(dashboards.data).sort(), dashboardFiles());
    for (const file of dashboardFiles()) t.is(dashboards.data[file], readFileSync(join(root, 'grafana', 'dashboards', file), 'utf8'), `${overlay}: ${file}`);
    // kubectl apply keeps the whole object in an annotation, which may not exceed 256 KiB.
    t.true(Buffer.byteLength(JSON.stringify(dashboards)) < 256 * 1024, `${overlay}: the dashboards' ConfigMap fits kubectl apply`);

    // The Ingress: TLS for PASSGATE_PUBLIC_URL's host, to the public port only (never the ops listener's /metrics and /admin).
    t.deepEqual(ingressTargets(built), ['http'], overlay);
    const ingress = one(built, 'Ingress', 'passgate').spec as unknown as IngressSpec;
    const c = (one(built, 'Deployment', 'passgate').spec as unknown as DeploymentSpec).template.spec.containers.find((x) => x.name === 'passgate') as Container;
    const publicUrl = new URL(c.env.find((e) => e.name === 'PASSGATE_PUBLIC_URL')?.value ?? '');
    t.is(publicUrl.protocol, 'https:');
    t.deepEqual(ingress.rules.map((rule) => rule.host), [publicUrl.hostname], `${overlay}: the Ingress serves PASSGATE_PUBLIC_URL's host`);
    t.deepEqual(ingress.tls?.flatMap((tls) => tls.hosts), [publicUrl.hostname], `${overlay}: with TLS`);
    t.truthy(ingress.tls?.[0]?.secretName);
  }

  // The checks can fail: an invalid field, and an Ingress path to the ops port.
  const built = await build('dev');
  const broken = structuredClone(built);
  const brokenPod = (one(broken, 'Deployment', 'passgate').spec as unknown as DeploymentSpec).template.spec;
  (brokenPod.containers[0]?.ports[0] as { containerPort: unknown }).containerPort = 'eighty';
  (one(broken, 'Ingress', 'passgate').spec as unknown as IngressSpec).rules[0]?.http.paths.push({ path: '/metrics', pathType: 'Prefix', backend: { service: { name: 'passgate', port: { number: 9464 } } } });
  const problems = await schemaProblems(broken);
  t.is(problems.length, 1, problems.join('\n'));
  t.regex(problems[0] ?? '', /^Deployment passgate: .*containerPort must be integer/);
  t.deepEqual(ingressTargets(broken), ['http', 'metrics']);

  // Another Helm release name: one patch in the operator's overlay (see the component's comment).
  await mkdir(join(tree, 'overlays', 'my-cluster'));
  const myCluster = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: ['../dev'],
    patches: [{ target: { group: 'monitoring.coreos.com', kind: 'ServiceMonitor|PrometheusRule' }, patch: stringify([{ op: 'replace', path: '/metadata/labels/release', value: 'my-monitoring' }]) }],
  };
  await writeFile(join(tree, 'overlays', 'my-cluster', 'kustomization.yaml'), stringify(myCluster));
  const relabelled = (await build('my-cluster')).filter((m) => monitoringKinds.has(m.kind));
  t.is(relabelled.length, 3);
  for (const m of relabelled) t.is(m.metadata.labels?.release, 'my-monitoring', `${m.kind} ${m.metadata.name}`);
});

function parseMemory(value: string | undefined): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(value ?? '');
  if (!match) throw new Error(`unexpected memory quantity ${value}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

// ── runtimes ────────────────────────────────────────────────────────────────────────────────

/** Does an `engines` range of the forms `^X.Y` and `>=X[.Y]`, joined by `||`, allow a Node version? */
function enginesAllow(range: string, version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  return range.split('||').some((part) => {
    const caret = /^\^(\d+)\.(\d+)$/.exec(part.trim());
    if (caret) return major === Number(caret[1]) && minor >= Number(caret[2]);
    const atLeast = /^>=(\d+)(?:\.(\d+))?$/.exec(part.trim());
    if (atLeast) return major > Number(atLeast[1]) || (major === Number(atLeast[1]) && minor >= Number(atLeast[2] ?? 0));
    throw new Error(`engines: unexpected range ${part}`);
  });
}

test('the image is the newest Node line CI tests, pinned by digest; every line CI tests is one engines allows', (t) => {
  const froms = [...readFileSync(join(root, 'Dockerfile'), 'utf8').matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1] as string);
  t.is(froms.length, 2, 'build and runtime stages');
  for (const image of froms) t.regex(image, /^node:\d+-slim@sha256:[0-9a-f]{64}$/, 'pinned by digest, not by a tag that moves');
  t.is(new Set(froms).size, 1, 'both stages on the same base');
  const imageMajor = Number(/^node:(\d+)/.exec(froms[0] ?? '')?.[1]);

  const ciMajors = (/^for major in ([\d ]+); do$/m.exec(readFileSync(join(root, '.ci', 'run'), 'utf8'))?.[1] ?? '').trim().split(/\s+/).map(Number);
  t.true(ciMajors.length >= 2, `.ci/run runs npm test on Node ${ciMajors.join(' and ')}`);
  t.is(imageMajor, Math.max(...ciMajors), 'CI tests the image\'s Node line');
  t.is(imageMajor % 2, 0, 'an LTS line (even major)');

  const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  // CI takes each line's latest release (.99: any late minor of the line).
  for (const major of ciMajors) t.true(enginesAllow(engines, `${major}.99.0`), `engines ${engines} allows Node ${major}`);
  t.true(enginesAllow(engines, process.versions.node), `engines ${engines} allows the Node running this test (${process.versions.node})`);
  // The check can fail.
  t.false(enginesAllow(engines, '18.20.0'));
  t.false(enginesAllow(engines, '20.18.0'));
});

// ── variables, secrets and the config file ──────────────────────────────────────────────────

test('every variable the Deployment and its overlays set is one passgate reads, and every secret it uses is in the template', (t) => {
  const { path: configPath } = configMapFile();
  const refs = secretRefs(parse(readFileSync(configPath, 'utf8')));
  const readByPassgate = variablesReadByPassgate();

  for (const overlay of ['base', 'dev', 'prod']) {
    const env = overlay === 'base' ? container.env : overlayEnv(overlay);
    const unread = env.map((e) => e.name).filter((name) => !readByPassgate.has(name));
    t.deepEqual(unread, [], `${overlay}: variables passgate never reads`);
    t.is(new Set(env.map((e) => e.name)).size, env.length, `${overlay}: no variable twice`);
    for (const e of env) t.true((e.value === undefined) !== (e.valueFrom === undefined), `${overlay}: ${e.name} has exactly one of value and valueFrom`);
  }
  const names = container.env.map((e) => e.name);
  for (const name of ['PASSGATE_CONFIG', 'REDIS_URL', 'PASSGATE_KEYS_FILE', 'PASSGATE_ADMIN_KEY', 'PASSGATE_TRUSTED_PROXIES', 'PASSGATE_PUBLIC_URL', ...refs.env]) {
    t.true(names.includes(name), `the Deployment sets ${name}`);
  }

  // The Secret template: every key the pods use, and nothing that looks like a real value.
  const template = secretTemplate.stringData;
  const keysUsed = [
    ...['base', 'dev', 'prod'].flatMap((o) => (o === 'base' ? container.env : overlayEnv(o)).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : []))),
  ];
  for (const ref of keysUsed) {
    t.is(ref.name, secretTemplate.metadata.name);
    t.true(Object.hasOwn(template, ref.key), `secret key ${ref.key}`);
  }
  const files = secretFiles();
  for (const { secret, key } of files.values()) {
    if (secret === KEYS_SECRET) t.is(key, 'keys', 'the keyring Secret holds only the keyring');
    else t.true(secret === secretTemplate.metadata.name && Object.hasOwn(template, key), `mounted secret key ${secret}/${key}`);
  }
  for (const [key, value] of Object.entries(template)) t.is(value, 'REPLACE_ME', `${key} is a placeholder`);

  // Every { file: } in the config and PASSGATE_KEYS_FILE is a mounted item of a Secret, the keyring of its own.
  const keysFile = container.env.find((e) => e.name === 'PASSGATE_KEYS_FILE')?.value as string;
  for (const file of [...refs.file, keysFile]) t.true(files.has(file), `${file} is mounted from the Secret`);
  t.is(files.get(keysFile)?.secret, KEYS_SECRET);
  t.is(container.env.find((e) => e.name === 'PASSGATE_CONFIG')?.value, `${configMapFile().mountPath}/${basename(configPath)}`);
});

/** A stand-in for the overlays' keyring file. */
const fakeKeyring = `k1:${randomBytes(32).toString('base64')}`;

/** Plausible stand-ins for the Secret's keys (shapes passgate validates), never real values. */
const fakeSecrets: Record<string, string> = {
  'admin-key': 'test-admin-key-0123456789-abcdefghij',
  'tvos-app-key': 'test-tvos-app-key',
  'roku-app-key': 'test-roku-app-key',
  'tvos-software-statement': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0dm9zIn0.test',
  'roku-software-statement': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb2t1In0.test',
  'drm-site-key': 'test-site-key-of-32-bytes-000000',
  'drm-access-key': 'test-access-key',
  'redis-url': 'rediss://:test-password@redis.example.com:6380/0',
};

for (const overlay of ['base', 'dev', 'prod']) {
  test(`${overlay}: the ConfigMap's passgate.yaml passes passgate's own loadConfig with the Deployment's environment`, async (t) => {
    t.deepEqual(Object.keys(fakeSecrets).sort(), Object.keys(secretTemplate.stringData).sort(), 'a stand-in for every key of the template');
    const dir = await tempDir(t);
    // The Secret's files under the temp dir, at the same paths as in the pod.
    const files = secretFiles();
    const localPath = (podPath: string) => join(dir, 'secrets', podPath);
    for (const [podPath, { secret, key }] of files) {
      await mkdir(dirname(localPath(podPath)), { recursive: true });
      await writeFile(localPath(podPath), `${secret === KEYS_SECRET ? fakeKeyring : fakeSecrets[key]}\n`);
    }
    const { path: configPath } = configMapFile();
    const rewrite = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(rewrite);
      if (typeof value !== 'object' || value === null) return value;
      const ref = value as Record<string, unknown>;
      if (Object.keys(ref).length === 1 && typeof ref.file === 'string') return { file: localPath(ref.file) };
      return Object.fromEntries(Object.entries(ref).map(([k, v]) => [k, rewrite(v)]));
    };
    const localConfig = join(dir, 'passgate.yaml');
    await writeFile(localConfig, JSON.stringify(rewrite(parse(readFileSync(configPath, 'utf8')))));

    const env: Record<string, string> = {};
    for (const e of overlay === 'base' ? container.env : overlayEnv(overlay)) {
      const secretKey = e.valueFrom?.secretKeyRef?.key;
      env[e.name] = secretKey ? (fakeSecrets[secretKey] as string) : (e.value as string);
    }
    env.PASSGATE_CONFIG = localConfig;
    env.PASSGATE_KEYS_FILE = localPath(env.PASSGATE_KEYS_FILE as string);
    env.PASSGATE_DATA_DIR = join(dir, 'data');

    // A ConfigError lists every problem at once.
    const config = loadConfig(env as Env);
    t.deepEqual(Object.keys(config.apps).sort(), ['roku', 'tvos']);
    t.is(config.apps.tvos?.appKey.reveal(), fakeSecrets['tvos-app-key']);
    t.is(config.apps.roku?.softwareStatement.reveal(), fakeSecrets['roku-software-statement']);
    t.is(config.keys?.reveal(), fakeKeyring);
    t.is(config.adminKey?.reveal(), fakeSecrets['admin-key']);
    t.is(config.drm?.siteKey.reveal(), fakeSecrets['drm-site-key']);
    t.is(config.drm?.playready.revinfoUrl, 'https://aka.ms/revinfo');
    t.is(config.http.port, 8080);
    t.is(config.metrics.port, 9464);
    t.true(config.trustedProxies.length > 0);
    t.regex(config.publicUrl ?? '', /^https:\/\//);
    t.true(config.upstreams.pass.baseUrl.startsWith('https://'));
    t.is(config.redisUrl?.reveal(), fakeSecrets['redis-url']);
    if (overlay === 'dev') t.is(config.upstreams.pass.baseUrl, 'https://sp.auth-staging.adobe.com');
  });
}

// ── dashboard and alerts against a running passgate ────────────────────────────────────────

test('the dashboard and the alerts read only metrics a running passgate exposes, and the dashboard shows every one', async (t) => {
  // RevInfo on (tests keep it off by default), so its gauge and counter are in the registry; the partner agent on, for its metrics.
  const agent = { partners: { p: { secret: 'partner-secret-for-the-dashboard' } }, keys: [{ id: 'k', secret: 'cd'.repeat(32) }] };
  const f = await withPassgate(t, { file: { drm: drmSection({ playready: simRevInfo }), agent } });
  t.is((await f.call('/livez')).status, 200);
  t.is((await f.call('/readyz')).status, 200);
  const registered = await f.register();
  t.is(registered.status, 201);
  const { deviceToken } = (await registered.json()) as { deviceToken: string };
  const auth = { authorization: `Bearer ${deviceToken}`, 'content-type': 'application/json' };
  t.is((await f.call('/v1/mvpds', { headers: auth })).status, 200);
  const refused = await f.call('/v1/license-token', { method: 'POST', headers: auth, body: JSON.stringify({ resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-movie' } }) });
  t.is(refused.status, 403);
  const agentCall = await f.call('/agent/v1/drm/authenticate', {
    method: 'POST',
    headers: { authorization: 'Bearer partner-secret-for-the-dashboard', 'kep-agentsession': 'dashboard-session', 'content-type': 'application/json' },
    body: JSON.stringify({ fileId: 'doc', userPrincipal: 'a@corp.example' }),
  });
  t.is(agentCall.status, 200);

  const scrape = await fetch(f.passgate.metricsUrl);
  t.is(scrape.status, 200);
  const exposition = parseExposition(await scrape.text());
  t.true(exposition.types.size > 50, `${exposition.types.size} families`);
  // The routes just exercised are samples the label checks below can use.
  t.deepEqual([...(exposition.labels.get('passgate_drm_gate_refusals_total') ?? [])], ['reason']);

  const dashboard = readDashboard();
  t.deepEqual(metricProblems(exposition, dashboard), { unknownInDashboard: [], unknownInRules: [], missingFromDashboard: [] });

  // Label names used in matchers and groupings exist on the metrics (where samples show them).
  const expressions = [...allPanels(dashboard).flatMap((p) => (p.targets ?? []).map((x) => x.expr)), ...ruleExpressions().map((r) => r.expr)];
  for (const expr of expressions) {
    for (const { metric, labels } of matcherLabels(expr)) {
      const family = familyOf(metric, exposition);
      const seen = family ? exposition.labels.get(family) : undefined;
      if (!seen || seen.size === 0) continue;
      for (const label of labels) t.true(seen.has(label) || targetLabels.has(label), `${metric} has no label ${label}: ${expr}`);
    }
    const families = metricNames(expr).map((name) => familyOf(name, exposition));
    const seen = families.map((family) => (family ? exposition.labels.get(family) : undefined));
    if (seen.some((labels) => !labels || labels.size === 0)) continue;
    const available = new Set([...seen.flatMap((labels) => [...(labels ?? [])]), ...targetLabels, 'le']);
    for (const label of groupingLabels(expr)) t.true(available.has(label), `no metric in the expression has label ${label}: ${expr}`);
  }

  // The check can fail: a metric renamed in the code shows up both as unknown and as not shown.
  const renamed = structuredClone(dashboard);
  for (const panel of allPanels(renamed)) for (const target of panel.targets ?? []) target.expr = target.expr.replaceAll('passgate_decisions_total', 'passgate_decision_total');
  t.deepEqual(metricProblems(exposition, renamed), { unknownInDashboard: ['passgate_decision_total'], unknownInRules: [], missingFromDashboard: ['passgate_decisions_total'] });
});

test('the dashboard: a Prometheus datasource variable used by every panel, $__rate_interval in every rate() and increase(), units that fit', (t) => {
  const dashboard = readDashboard();
  const datasource = dashboard.templating.list.find((v) => v.type === 'datasource');
  t.like(datasource, { name: 'datasource', query: 'prometheus' });
  const panels = allPanels(dashboard);
  t.true(panels.length >= 40);
  const titles = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);
  for (const row of [/HTTP/, /Upstream/, /DCR/, /Sign-in/, /Entitlement/, /DRM/, /process/]) t.true(titles.some((title) => row.test(title)), String(row));
  t.is(new Set(dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).map((p) => p.id)).size, dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).length, 'unique panel ids');

  const units = new Set(['s', 'reqps', 'ops', 'percentunit', 'short', 'bytes']);
  for (const panel of panels) {
    const label = `${panel.title} (${panel.id})`;
    t.deepEqual(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, label);
    const unit = panel.fieldConfig?.defaults?.unit ?? '';
    t.true(units.has(unit), `${label}: unit ${unit}`);
    const targets = panel.targets ?? [];
    t.true(targets.length > 0, label);
    for (const target of targets) {
      const { expr } = target;
      t.is(target.datasource?.uid, '${datasource}', label);
      for (const call of rangeFunctionArguments(expr)) t.regex(call.argument, /\[\$__rate_interval\]$/, `${label}: ${call.fn}(${call.argument})`);
      t.deepEqual(expr.match(/\[[^\]]*\]/g)?.filter((range) => range !== '[$__rate_interval]') ?? [], [], `${label}: only $__rate_interval windows`);
      const names = metricNames(expr);
      const division = /\s\/\s/.test(expr);
      if (expr.includes('histogram_quantile')) t.is(unit, 's', `${label}: quantiles of *_seconds histograms`);
      if (unit === 'bytes') t.true(names.every((n) => n.endsWith('_bytes')), label);
      if (unit === 's') t.true(names.every((n) => n.includes('_seconds')), label);
      if (unit === 'reqps' || unit === 'ops') t.true(expr.includes('rate(') && !division, `${label}: a per-second rate`);
      if (unit === 'percentunit') t.true(division || names.every((n) => /_seconds_(total|sum)$/.test(n)), `${label}: a ratio or seconds per second`);
    }
  }
});
