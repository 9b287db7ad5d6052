/**
 * Shape equality with a documented sample (test/fixtures/adobe-pass-samples.json): the same keys at
 * every level and the same JSON types, values ignored (they are the documents' illustrations, and
 * codes, ids, timestamps must vary). Two allowances, both from the documents themselves:
 * - a string field may be null: the session sample shows unknown device texts as null;
 * - keys named in `optional` may be present although the sample omits them (e.g. an enhanced
 *   error's `trace` and `details`, fields of its Structure table that some samples leave out).
 * A sample null accepts a string or null. An array as long as the sample's is compared item by item
 * (samples mix permits and denies); otherwise every actual item is compared with the sample's first.
 */
export function sampleShapeDiff(sample: unknown, actual: unknown, optional: readonly string[] = [], path = '$'): string[] {
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  const [want, got] = [kind(sample), kind(actual)];
  if (want === 'null') return got === 'null' || got === 'string' ? [] : [`${path}: expected null or string, got ${got}`];
  if (want === 'string' && got === 'null') return [];
  if (want !== got) return [`${path}: expected ${want}, got ${got}`];
  if (Array.isArray(sample) && Array.isArray(actual)) {
    if (sample.length === 0) return actual.length === 0 ? [] : [`${path}: expected an empty array`];
    if (actual.length === 0) return [`${path}: expected a non-empty array`];
    return actual.flatMap((item, i) => sampleShapeDiff(sample.length === actual.length ? sample[i] : sample[0], item, optional, `${path}[${i}]`));
  }
  if (want !== 'object') return [];
  const s = sample as Record<string, unknown>;
  const a = actual as Record<string, unknown>;
  const missing = Object.keys(s).filter((key) => !(key in a)).map((key) => `${path}.${key}: missing`);
  const extra = Object.keys(a).filter((key) => !(key in s) && !optional.includes(key)).map((key) => `${path}.${key}: not in the sample`);
  const nested = Object.keys(s).filter((key) => key in a).flatMap((key) => sampleShapeDiff(s[key], a[key], optional, `${path}.${key}`));
  return [...missing, ...extra, ...nested];
}

/** A map keyed by MVPD id (profiles, logouts) with its one entry under the sample's key instead. */
export function underKey(map: Record<string, unknown>, key: string): Record<string, unknown> {
  const values = Object.values(map);
  if (values.length !== 1) throw new Error(`expected one entry, got ${Object.keys(map).join(', ') || 'none'}`);
  return { [key]: values[0] };
}
