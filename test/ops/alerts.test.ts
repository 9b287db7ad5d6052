import test, { type ExecutionContext } from 'ava';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { basename, delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { drmSection, simRevInfo } from '../helpers/drm-config.js';
import { externalSeries, metricNames, skeleton } from '../helpers/promql.js';
import { tempDir } from '../helpers/with-app.js';
import { withPassgate } from '../helpers/with-passgate.js';

/**
 * The alerts (k8s/base/prometheusrule.yaml) as an on-call engineer meets them: each with a
 * severity, a summary and a runbook section that exists; paging ones never on a single event;
 * and each one run through promtool — `check rules`, and `test rules` with a case where it fires
 * and a case where it stays quiet (test/ops/alerts.promtool-test*.yaml) — plus `promtool check
 * metrics` on what a running passgate exposes. Without promtool on PATH the promtool tests are
 * reported as skipped, except under CI=true, where a missing promtool fails them (.ci/run
 * installs Debian's prometheus package, which ships it).
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const rulesFile = join(root, 'k8s', 'base', 'prometheusrule.yaml');
const runbookFile = join(root, 'docs', 'runbook.md');
const operationsFile = join(root, 'docs', 'operations.md');
/** promtool's unit-test files: most alerts evaluated every minute, the slow and ticket burn rates (6h and 1d windows) every 5 minutes. */
const promtoolTests = ['alerts.promtool-test.yaml', 'alerts.promtool-test-slo.yaml'].map((name) => join(root, 'test', 'ops', name));

type Labels = Record<string, string>;
interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Labels;
  annotations?: Labels;
}
interface Group {
  name: string;
  rules: Rule[];
}

const groups = (parse(readFileSync(rulesFile, 'utf8')) as { spec: { groups: Group[] } }).spec.groups;
const rules = groups.flatMap((g) => g.rules);
const alerts = rules.filter((r): r is Rule & { alert: string } => r.alert !== undefined);
const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
const alert = (name: string) => alerts.find((a) => a.alert === name);

const seconds = (duration: string) => Number(duration.slice(0, -1)) * { s: 1, m: 60, h: 3600, d: 86_400 }[duration.slice(-1) as 's' | 'm' | 'h' | 'd'];
/** The longest range selector of an expression (`[5m]`), in seconds. */
const longestWindow = (expr: string) => Math.max(0, ...[...expr.matchAll(/\[(\d+[smhd])\]/g)].map((m) => seconds(m[1] as string)));

/** GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
const anchorsIn = (markdown: string) => new Set([...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1] as string)));

/** What comes before the anchor of a runbook_url: one base for all, changed in one command (docs/operations.md). */
const baseOf = (url: string) => url.slice(0, url.indexOf('#') + 1);

/** The runbook_url annotations that are not `base` plus a heading's anchor of the runbook. */
function brokenRunbookLinks(rulesToCheck: Rule[], runbook: string, base: string): string[] {
  const anchors = anchorsIn(runbook);
  return rulesToCheck
    .filter((r) => r.alert !== undefined)
    .flatMap((r) => {
      const url = r.annotations?.runbook_url ?? '';
      return url.startsWith(base) && anchors.has(url.slice(base.length)) ? [] : [`${r.alert}: ${url || 'no runbook_url'}`];
    });
}

/** `== 0` on the increase or rate of a counter: true only where the series exists (see prometheusrule.yaml). */
const zeroCounterComparison = (expr: string) => /\b(?:increase|rate|irate)\(\s*[\w:]+_total\s*\)[\s)]*==\s*0\b/.test(skeleton(expr));

const run = promisify(execFile);

/** A program on PATH, as an absolute path. */
function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) if (existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}

const promtool = onPath('promtool');
/**
 * The tests that run promtool: skipped where it is missing (ava lists them as skipped, never as
 * passed), except under CI=true, where they run and fail for want of it.
 */
const withPromtool = promtool !== undefined || process.env.CI === 'true' ? test : test.skip;
function needPromtool(t: ExecutionContext): string | undefined {
  if (promtool === undefined) t.fail('promtool is not on PATH and CI=true: install it (.ci/run does: Debian package prometheus)');
  return promtool;
}

/** `promtool check metrics` reads the exposition on stdin; its findings go to stdout or stderr by version. */
function checkMetrics(binary: string, exposition: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output: output.trim() }));
    child.stdin.end(exposition);
  });
}

// ── the rules as files ───────────────────────────────────────────────────────────────────────

test('every alert: a severity, a summary and a runbook_url whose anchor is a section of docs/runbook.md', (t) => {
  t.true(alerts.length >= 30, `${alerts.length} alerts`);
  t.is(new Set(alerts.map((a) => a.alert)).size, alerts.length, 'alert names are unique');
  const bases = new Set(alerts.map((a) => baseOf(a.annotations?.runbook_url ?? '')));
  t.is(bases.size, 1, `one base for every runbook_url: ${[...bases].join(' ')}`);
  const base = [...bases][0] as string;
  t.regex(base, /^https:\/\/[^/\s]+\/\S*runbook\.md#$/);
  // docs/operations.md's command to point the links elsewhere replaces exactly this base.
  t.true(readFileSync(operationsFile, 'utf8').includes(`sed -i 's|${base}|`), 'operations.md names the current base');
  for (const a of alerts) {
    t.regex(String(a.labels?.severity), /^(critical|warning)$/, a.alert);
    t.truthy(a.annotations?.summary, a.alert);
    t.is(a.annotations?.runbook_url, `${base}${a.alert.toLowerCase()}`, `${a.alert}: the anchor is the alert's name`);
    if (a.for !== undefined) t.regex(a.for, /^\d+[smh]$/, a.alert);
  }
  const runbook = readFileSync(runbookFile, 'utf8');
  t.deepEqual(brokenRunbookLinks(rules, runbook, base), []);
  // Each section says what an on-call engineer needs, under the same five headings.
  const sections = runbook.split(/\n(?=## )/);
  for (const a of alerts) {
    const section = sections.find((text) => text.startsWith(`## ${a.alert}\n`)) ?? '';
    for (const part of ['Meaning', 'Impact', 'First checks', 'Mitigation', 'Escalation']) t.true(section.includes(`**${part}**`), `${a.alert}: ${part}`);
  }

  // The check can fail: a missing section and a missing annotation are each named.
  t.deepEqual(brokenRunbookLinks(rules, runbook.replace('\n## PassgateAbsent\n', '\n## Passgate absent\n'), base), [`PassgateAbsent: ${base}passgateabsent`]);
  const bare = rules.map((r) => (r.alert === 'PassgateRedisDown' ? { ...r, annotations: { summary: 'x' } } : r));
  t.deepEqual(brokenRunbookLinks(bare, runbook, base), ['PassgateRedisDown: no runbook_url']);
});

test('paging (critical) alerts wait with a `for` longer than the windows they count events in, so one event never pages', (t) => {
  const critical = alerts.filter((a) => a.labels?.severity === 'critical');
  t.true(critical.length >= 10);
  for (const a of critical) {
    t.truthy(a.for, `${a.alert} has a for`);
    // A burn-rate alert reads recorded ratios (its windows are the recording rules'); the others count raw series.
    if (!metricNames(a.expr).some((name) => recorded.has(name))) t.true(seconds(a.for ?? '0s') > longestWindow(a.expr) || longestWindow(a.expr) === 0, `${a.alert}: for ${a.for} vs its window`);
    // The one-off-event form `x unless x offset w` fires on a single increment: never on a paging alert.
    t.false(/\boffset\b/.test(a.expr), `${a.alert} does not use the one-off-event form`);
  }
});

test('the alerts the issue and SPEC §4/§7 ask for: burn rates, latency, absent(), RevInfo with a margin, Redis', (t) => {
  // Multi-window, multi-burn-rate (SRE workbook): 14.4x over 1h and 5m, 6x over 6h and 30m pages; 3x over 1d and 2h is a ticket.
  const tiers = [
    { suffix: 'Fast', factor: '14.4', windows: ['1h', '5m'], severity: 'critical' },
    { suffix: 'Slow', factor: '6', windows: ['6h', '30m'], severity: 'critical' },
    { suffix: 'Ticket', factor: '3', windows: ['1d', '2h'], severity: 'warning' },
  ];
  for (const [slo, sli, budget] of [
    ['LicenseGate', 'license_gate_errors', '0.001'],
    ['Authorize', 'authorize_errors', '0.005'],
  ] as const) {
    for (const tier of tiers) {
      const rule = alert(`Passgate${slo}BudgetBurn${tier.suffix}`);
      t.is(rule?.labels?.severity, tier.severity, `${slo} ${tier.suffix}`);
      for (const window of tier.windows) {
        t.true(recorded.has(`passgate:${sli}:ratio_rate${window}`), `recording rule for ${sli} over ${window}`);
        t.regex(rule?.expr ?? '', new RegExp(`passgate:${sli}:ratio_rate${window} > \\(${tier.factor.replace('.', '\\.')} \\* ${budget.replace('.', '\\.')}\\)`), `${slo} ${tier.suffix} ${window}`);
      }
    }
  }
  t.regex(rules.find((r) => r.record === 'passgate:license_gate_errors:ratio_rate5m')?.expr ?? '', /passgate_drm_callback_answers_total\{[^}]*result="unavailable"/);
  t.regex(alert('PassgateHighLatency')?.expr ?? '', /histogram_quantile\(0\.99, [^\n]*passgate_http_request_duration_seconds_bucket/);
  t.is(alert('PassgateAbsent')?.expr.trim(), 'absent(up{job="passgate"})');

  // RevInfo: a healthy copy ages up to the refresh period (at most 168 h, src/config/drm.ts) plus the hourly check; the alert leaves more.
  const stale = /revinfo_age_seconds\{[^}]*\}\)\s*>\s*(\d+)/.exec(alert('PassgatePlayReadyRevInfoStale')?.expr ?? '');
  t.true(Number(stale?.[1]) >= 168 * 3600 + 2 * 3600, `threshold ${stale?.[1]}`);
  t.regex(alert('PassgatePlayReadyRevInfoMissing')?.expr ?? '', /passgate_drm_playready_revinfo_age_seconds\{[^}]*\}\)\s*==\s*-1/);
  t.is(alert('PassgatePlayReadyRevInfoMissing')?.for, '1h');

  t.regex(alert('PassgateUpstreamBreakerOpen')?.expr ?? '', /passgate_upstream_breaker_state\{[^}]*\}\[2m\]\)\)\s*==\s*2/);
  t.regex(alert('PassgateUpstreamThrottled')?.expr ?? '', /passgate_upstream_throttled_total\{[^}]*source="upstream"/);
  t.regex(alert('PassgateDrmStoreUnavailable')?.expr ?? '', /passgate_drm_gate_refusals_total\{[^}]*reason="store_unavailable"/);
  t.regex(alert('PassgateLicenseServiceErrors')?.expr ?? '', /passgate_drm_license_service_errors_total/);
  t.regex(alert('PassgateHigh5xxRate')?.expr ?? '', /status_code=~"5\.\."/);
  t.regex(alert('PassgateSigninPollingStalled')?.expr ?? '', /passgate_signin_pending_sessions/);
  t.regex(alert('PassgateNoReadyReplicas')?.expr ?? '', /kube_deployment_status_replicas_available\{deployment="passgate"\}\s*==\s*0/);

  // Redis through redis_exporter, scraped as job passgate-redis (k8s/redis: the redis-exporter sidecar).
  for (const [name, metric] of [
    ['PassgateRedisDown', 'redis_up'],
    ['PassgateRedisNoMaster', 'redis_instance_info'],
    ['PassgateRedisMasterLinkDown', 'redis_master_link_up'],
    ['PassgateRedisMemoryNearLimit', 'redis_memory_max_bytes'],
    ['PassgateRedisRejectedConnections', 'redis_rejected_connections_total'],
  ] as const) {
    t.regex(alert(name)?.expr ?? '', new RegExp(`${metric}\\{job="passgate-redis"`), name);
  }

  // Every series that is not passgate's is one a kube-prometheus-stack (plus the exporter) has.
  const external = rules.flatMap((r) => metricNames(r.expr)).filter((name) => !name.startsWith('passgate_') && !recorded.has(name));
  t.deepEqual([...new Set(external)].sort(), [...externalSeries].sort());
});

test('no alert tests a counter with == 0 (a missing series never equals 0)', (t) => {
  t.deepEqual(alerts.filter((r) => zeroCounterComparison(r.expr)).map((r) => r.alert), []);
  // The check can fail: the form that never fires when polling never started.
  t.true(zeroCounterComparison('sum by (namespace) (increase(passgate_signin_polls_total{job="passgate"}[15m])) == 0'));
});

// ── promtool ────────────────────────────────────────────────────────────────────────────────

interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts: Array<{ exp_labels: Labels }>;
}
const promtoolSuites = promtoolTests.map((path) => parse(readFileSync(path, 'utf8')) as { rule_files: string[]; tests: Array<{ input_series: unknown[]; alert_rule_test: AlertTest[] }> });

test('the promtool unit tests have, for every alert, a case where it fires and one where it stays quiet', (t) => {
  const cases = promtoolSuites.flatMap((suite) => suite.tests.flatMap((x) => x.alert_rule_test));
  const names = new Set(alerts.map((a) => a.alert));
  t.deepEqual(
    cases.map((c) => c.alertname).filter((name) => !names.has(name)),
    [],
    'every case names an existing alert',
  );
  for (const name of names) {
    t.true(
      cases.some((c) => c.alertname === name && c.exp_alerts.length > 0),
      `${name} fires somewhere`,
    );
    t.true(
      cases.some((c) => c.alertname === name && c.exp_alerts.length === 0),
      `${name} is quiet somewhere`,
    );
  }
  for (const suite of promtoolSuites) t.deepEqual(suite.rule_files, ['rules.yaml']);
});

withPromtool('promtool accepts the rules and their unit tests pass', async (t) => {
  const bin = needPromtool(t);
  if (!bin) return;
  const dir = await tempDir(t);
  await writeFile(join(dir, 'rules.yaml'), stringify({ groups }));
  const checked = await run(bin, ['check', 'rules', join(dir, 'rules.yaml')]);
  t.regex(checked.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));

  // The unit tests compare annotations too; they are prose (and tested above), so the copy under test has none.
  const bare = groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _annotations, ...rule }) => rule) }));
  await writeFile(join(dir, 'rules.yaml'), stringify({ groups: bare }));
  const units = promtoolTests.map((path) => basename(path));
  await Promise.all(promtoolTests.map((path) => copyFile(path, join(dir, basename(path)))));
  const tested = await run(bin, ['test', 'rules', ...units], { cwd: dir, maxBuffer: 16 << 20 }).catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? String(err) }));
  t.is(tested.stderr, '', 'promtool test rules: no failure');
  t.regex(tested.stdout, /SUCCESS/);

  // The tests can fail: the RevInfo threshold of before (the refresh period itself) fires on the healthy fleet (its case is in the first file).
  const tight = bare.map((g) => ({ ...g, rules: g.rules.map((r) => (r.alert === 'PassgatePlayReadyRevInfoStale' ? { ...r, expr: r.expr.replace('626400', '604800') } : r)) }));
  await writeFile(join(dir, 'rules.yaml'), stringify({ groups: tight }));
  const failed = await run(bin, ['test', 'rules', units[0] as string], { cwd: dir, maxBuffer: 16 << 20 }).then(
    () => ({ stderr: '' }),
    (err: { stderr?: string }) => ({ stderr: err.stderr ?? '' }),
  );
  t.regex(failed.stderr, /PassgatePlayReadyRevInfoStale/);
});

withPromtool('promtool check metrics finds nothing to report in a running passgate\'s /metrics', async (t) => {
  const bin = needPromtool(t);
  if (!bin) return;
  // RevInfo and the partner agent on, so their families are there too; a few requests give the labelled ones samples.
  const agent = { partners: { p: { secret: 'partner-secret-for-promtool' } }, keys: [{ id: 'k', secret: 'ab'.repeat(32) }] };
  const f = await withPassgate(t, { file: { drm: drmSection({ playready: simRevInfo }), agent } });
  t.is((await f.call('/readyz')).status, 200);
  t.is((await f.register()).status, 201);
  t.is((await f.call('/v1/no-such-route')).status, 404);

  const scrape = await fetch(f.passgate.metricsUrl);
  t.is(scrape.status, 200);
  const exposition = await scrape.text();
  t.true(exposition.includes('# TYPE passgate_nodejs_active_handles gauge'));
  const checked = await checkMetrics(bin, exposition);
  t.is(checked.output, '', 'promtool check metrics reports nothing');
  t.is(checked.code, 0);

  // The check can fail: a gauge named like a counter (what prom-client's defaults expose) is reported.
  const counterNamedGauge = '# HELP passgate_example_total Not a counter.\n# TYPE passgate_example_total gauge\npassgate_example_total 1\n';
  const reported = await checkMetrics(bin, exposition + counterNamedGauge);
  t.regex(reported.output, /passgate_example_total non-counter metrics should not have "_total" suffix/);
  t.not(reported.code, 0);
});
