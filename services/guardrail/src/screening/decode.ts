/**
 * Encoded segments a model can read but a phrase list cannot: base64, hex, URL encoding and rot13. Each decoded
 * segment that reads as text is screened like the text around it (index.ts), so an attack does not pass by being
 * encoded; finding one that way is itself the `obfuscation` category.
 */

const BASE64 = /[A-Za-z0-9+/_-]{16,}={0,2}/g;
const HEX = /(?:\b|\\x|0x)(?:[0-9a-fA-F]{2}(?:[\s:,]|\\x|0x)?){10,}/g;
const URL_ESCAPES = /%[0-9A-Fa-f]{2}/g;

/** Most of it printable, some of it letters and spaces: what a decoded instruction looks like. */
function readsAsText(text: string): boolean {
  if (text.length < 8) return false;
  let printable = 0;
  let letters = 0;
  let spaces = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (code === 0xfffd) return false;
    if (code >= 0x20 || char === "\n" || char === "\t") printable++;
    if (/\p{L}/u.test(char)) letters++;
    if (char === " ") spaces++;
  }
  const length = [...text].length;
  return printable / length > 0.95 && letters / length > 0.5 && spaces >= 1;
}

function base64Segments(text: string): string[] {
  const decoded: string[] = [];
  for (const [segment] of text.matchAll(BASE64)) {
    // A word run like "instructions" is not base64 worth decoding: require the mixed classes of encoded bytes.
    if (!/[A-Z]/.test(segment) || !/[a-z]/.test(segment)) continue;
    const normalised = segment.replace(/-/g, "+").replace(/_/g, "/");
    const text = Buffer.from(normalised, "base64").toString("utf8");
    if (readsAsText(text)) decoded.push(text);
  }
  return decoded;
}

function hexSegments(text: string): string[] {
  const decoded: string[] = [];
  for (const [segment] of text.matchAll(HEX)) {
    const digits = segment.replace(/\\x|0x|[\s:,]/g, "");
    if (digits.length % 2 !== 0) continue;
    const text = Buffer.from(digits, "hex").toString("utf8");
    if (readsAsText(text)) decoded.push(text);
  }
  return decoded;
}

function urlDecoded(text: string): string[] {
  if ((text.match(URL_ESCAPES)?.length ?? 0) < 4) return [];
  try {
    const decoded = decodeURIComponent(text.replace(/\+/g, " "));
    return decoded !== text ? [decoded] : [];
  } catch {
    return [];
  }
}

function rot13(text: string): string {
  return text.replace(/[a-zA-Z]/g, (char) => {
    const base = char <= "Z" ? 65 : 97;
    return String.fromCharCode(((char.charCodeAt(0) - base + 13) % 26) + base);
  });
}

/** English function words: frequent in any English sentence, rare in its rot13. */
const COMMON = new Set(
  (
    "the a an and or of to in on at for with by from is are was were be been you your i me my it its this that " +
    "these those all any not no do does did have has had will would can could should must what how why now " +
    "then there their they them we our as if so but just only also into about tell say give show print write"
  ).split(" "),
);

function commonShare(words: string[]): number {
  if (words.length === 0) return 0;
  return words.filter((word) => COMMON.has(word)).length / words.length;
}

/** Lines that read as English once rot13'd and not before. */
function rot13Segments(text: string): string[] {
  const decoded: string[] = [];
  for (const line of text.split(/[\n.!?;:]+/)) {
    const words = line.toLowerCase().match(/[a-z]+/g) ?? [];
    if (words.length < 4 || commonShare(words) >= 0.15) continue;
    const turned = rot13(line);
    const turnedWords = turned.toLowerCase().match(/[a-z]+/g) ?? [];
    if (commonShare(turnedWords) >= 0.25) decoded.push(turned);
  }
  return decoded;
}

/** Every encoded segment of the text that decodes to readable text, at most `limit` of them. */
export function decodedSegments(text: string, limit = 16): string[] {
  const found = [...base64Segments(text), ...hexSegments(text), ...urlDecoded(text), ...rot13Segments(text)];
  return found.slice(0, limit);
}
