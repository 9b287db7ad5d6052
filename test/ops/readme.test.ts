import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { bundledConfigFile, packageRoot } from '../../src/config/package.js';
import { envSchema } from '../../src/config/schema.js';
import { deviceFingerprint } from '../../src/pass/device-identity.js';
import { defaultRules } from '../../src/sim/rules.js';

/** The README's first steps and reference tables say what the code does (the README must stay true). */

const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
const section = (heading: string) => {
  const start = readme.indexOf(`${heading}\n`);
  if (start < 0) throw new Error(`README has no "${heading}"`);
  const end = readme.slice(start + heading.length).search(/\n#{2,3} /);
  return readme.slice(start, end < 0 ? undefined : start + heading.length + end);
};

test('the configuration table lists every environment variable passgate reads (PASSGATE_PUBLIC_URL among them)', (t) => {
  const table = section('## Configuration');
  for (const name of Object.keys(envSchema.shape)) t.regex(table, new RegExp(`^\\| [^|]*\`${name}\``, 'm'), name);
});

test('the first steps name the demo app key of config/example.yaml and the login the simulator accepts', (t) => {
  const firstSteps = section('### First steps: from a device to a license');
  const example = parse(readFileSync(bundledConfigFile, 'utf8')) as { apps: Record<string, { app_key: unknown }> };
  const appKey = example.apps.demo?.app_key;
  t.is(typeof appKey, 'string');
  t.true(firstSteps.includes(`app key \`${String(appKey)}\``));
  t.true(firstSteps.includes(`-H 'X-App-Key: ${String(appKey)}'`));

  const rules = defaultRules();
  t.true(firstSteps.includes(`**password \`${rules.loginPassword}\`**`));
  t.true(firstSteps.includes(`-d password=${rules.loginPassword}`));
  const mvpd = rules.mvpds.find((m) => m.id === 'Cablevision');
  t.truthy(mvpd);
  t.true(firstSteps.includes(`**\`${mvpd!.id}\`** (shown as *${mvpd!.displayName}*)`));
  t.true(rules.entitlements.some((rule) => rule.mvpd === mvpd!.id && rule.resource === 'REF30' && rule.decision === 'permit'));
});

test('the fingerprint example is what passgate computes', (t) => {
  const bindings = section('### Device bindings');
  const example = /printf '%s' '([^']+)' \| sha256sum[^\n]*\n# ([A-Za-z0-9+/=]+)\n/.exec(bindings);
  t.truthy(example, 'the worked example is in the Device bindings section');
  t.is(`fingerprint ${example![2]}`, deviceFingerprint(example![1]!));
  t.is(example![2]!.length, 88);
});
