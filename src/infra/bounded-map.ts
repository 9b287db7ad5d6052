/**
 * Sets `key` as the newest entry of an insertion-ordered Map and drops the oldest entries beyond
 * `maxEntries`: the one eviction rule of passgate's in-process maps (L1s, token and client
 * memories, the preauthorize cache), so none of them grows without bound.
 */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, maxEntries: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > maxEntries) {
    const oldest = map.keys().next();
    if (oldest.done) break;
    map.delete(oldest.value);
  }
}
