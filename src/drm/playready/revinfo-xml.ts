/**
 * A light structural check of a PlayReady RevInfo document (drm.md §4):
 * `<RevInfo><Revocation><ListID>(base64 GUID)</ListID><ListData>(base64)</ListData></Revocation>…</RevInfo>`.
 * ListData is a binary format documented only in licensed kits, so it is checked as base64 and no
 * further. No XML library: a linear scanner over the few shapes the documented samples show.
 */

/** A downloaded RevInfo larger than this is refused (real files are far smaller). */
export const MAX_REVINFO_BYTES = 2 * 1024 * 1024;

export type RevInfoCheck = { ok: true; listIds: string[] } | { ok: false; reason: string };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const SPACE = /\s*/y;
const COMMENT = /<!--(?:[^-]|-(?!-))*-->/y;
// passgate serves the stored document as it is, so only what XML 1.0 calls well-formed passes: the
// declaration's pseudo-attributes in their order and lower case (XMLDecl), quoted attribute values.
const DECLARATION = /<\?xml\s+version\s*=\s*(["'])1\.[0-9]+\1(?:\s+encoding\s*=\s*(["'])[A-Za-z][\w.-]*\2)?(?:\s+standalone\s*=\s*(["'])(?:yes|no)\3)?\s*\?>/y;
const ATTRIBUTE = String.raw`\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^<&"]*"|'[^<&']*')`;
// The root may carry attributes (a namespace, say); the documented samples show none.
const ROOT_OPEN = new RegExp(String.raw`<RevInfo((?:${ATTRIBUTE})*)\s*>`, 'y');
const ATTRIBUTE_NAME = /\s+([A-Za-z_][\w.:-]*)\s*=\s*(?:"[^"]*"|'[^']*')/g;
// XML 1.0 Char: no C0 controls other than tab, LF and CR, no lone surrogates, no U+FFFE/U+FFFF.
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const ROOT_CLOSE = /<\/RevInfo\s*>/y;
const REVOCATION_OPEN = /<Revocation\s*>/y;
const REVOCATION_CLOSE = /<\/Revocation\s*>/y;
const LIST_ID = /<ListID\s*>([^<]*)<\/ListID\s*>/y;
const LIST_DATA = /<ListData\s*>([^<]*)<\/ListData\s*>/y;

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  /** Matches a sticky pattern at the current position and moves past it. */
  take(pattern: RegExp): RegExpExecArray | undefined {
    pattern.lastIndex = this.pos;
    const match = pattern.exec(this.text);
    if (!match) return undefined;
    this.pos = pattern.lastIndex;
    return match;
  }

  /** Whitespace and comments (allowed between elements). */
  skipMisc(): void {
    do this.take(SPACE);
    while (this.take(COMMENT));
  }

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  /** What stands at the current position, for error messages. */
  here(): string {
    return this.done ? 'the end of the document' : JSON.stringify(this.text.slice(this.pos, this.pos + 40));
  }
}

/** base64 text of an element, whitespace removed (base64 may be wrapped). */
const base64Text = (raw: string) => raw.replace(/\s+/g, '');

function isBase64(text: string): boolean {
  return text.length > 0 && text.length % 4 === 0 && BASE64.test(text);
}

/** Returns the ListIDs (in document order) of a well-formed RevInfo, or why it is not one. */
export function checkRevInfo(xml: string): RevInfoCheck {
  if (typeof xml !== 'string') return { ok: false, reason: 'not a string' };
  if (Buffer.byteLength(xml, 'utf8') > MAX_REVINFO_BYTES) return { ok: false, reason: `larger than ${MAX_REVINFO_BYTES} bytes` };
  const s = new Scanner(xml.startsWith('\uFEFF') ? xml.slice(1) : xml);
  const bad = NOT_XML_CHAR.exec(s.text);
  if (bad) return { ok: false, reason: `a character XML does not allow (U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) at offset ${bad.index}` };
  // XML 1.0 §2.8: nothing, not even white space, may precede the declaration.
  if (!s.take(DECLARATION) && /^\s*<\?xml[\s?]/i.test(s.text)) return { ok: false, reason: `not a well-formed XML declaration at ${s.here()}` };
  s.skipMisc();
  const root = s.take(ROOT_OPEN);
  if (!root) return { ok: false, reason: `expected the root element <RevInfo> at ${s.here()}` };
  const names = [...(root[1] ?? '').matchAll(ATTRIBUTE_NAME)].map((m) => m[1]);
  if (new Set(names).size !== names.length) return { ok: false, reason: 'an attribute of <RevInfo> appears twice' };

  const listIds: string[] = [];
  for (;;) {
    s.skipMisc();
    if (s.take(ROOT_CLOSE)) break;
    if (!s.take(REVOCATION_OPEN)) return { ok: false, reason: `expected <Revocation> or </RevInfo> at ${s.here()}` };
    const n = listIds.length + 1;
    let listId: string | undefined;
    let listData: string | undefined;
    for (;;) {
      s.skipMisc();
      if (s.take(REVOCATION_CLOSE)) break;
      const id = s.take(LIST_ID);
      const data = id ? undefined : s.take(LIST_DATA);
      if (id) {
        if (listId !== undefined) return { ok: false, reason: `Revocation ${n} has more than one <ListID>` };
        listId = base64Text(id[1] ?? '');
      } else if (data) {
        if (listData !== undefined) return { ok: false, reason: `Revocation ${n} has more than one <ListData>` };
        listData = base64Text(data[1] ?? '');
      } else {
        return { ok: false, reason: `expected <ListID>, <ListData> or </Revocation> in Revocation ${n} at ${s.here()}` };
      }
    }
    if (listId === undefined) return { ok: false, reason: `Revocation ${n} has no <ListID>` };
    if (listData === undefined) return { ok: false, reason: `Revocation ${n} has no <ListData>` };
    // drm.md §4: a ListID is a GUID (16 bytes) in base64.
    if (!isBase64(listId) || Buffer.from(listId, 'base64').length !== 16) {
      return { ok: false, reason: `Revocation ${n}: ListID ${JSON.stringify(listId.slice(0, 40))} is not base64 of 16 bytes` };
    }
    if (!isBase64(listData)) return { ok: false, reason: `Revocation ${n}: ListData is not base64` };
    if (listIds.includes(listId)) return { ok: false, reason: `ListID ${listId} appears twice` };
    listIds.push(listId);
  }
  s.skipMisc();
  if (!s.done) return { ok: false, reason: `unexpected content after </RevInfo> at ${s.here()}` };
  if (listIds.length === 0) return { ok: false, reason: 'no <Revocation> element' };
  return { ok: true, listIds };
}
