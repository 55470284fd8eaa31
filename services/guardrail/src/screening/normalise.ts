/**
 * Normalisation before matching: what an attacker does to slip past a phrase list is undone here, and what was undone
 * is counted, because hiding text is itself a sign (docs/guardrail.md).
 */

/** Zero-width and soft-hyphen characters: invisible, so a word split by them reads whole to a model. */
const INVISIBLE = /[\u00AD\u180E\u200B-\u200F\u2060-\u2064\uFEFF]/g;
/** Bidi embeddings, overrides and isolates: they reorder what a reader sees without changing what a model reads. */
const BIDI = /[\u202A-\u202E\u2066-\u2069]/g;
/** An invisible character between two letters: inside a word, where no legitimate text puts one. */
const INVISIBLE_IN_WORD = /\p{L}[\u00AD\u180E\u200B-\u200F\u2060-\u2064\uFEFF]+\p{L}/gu;

/** Cyrillic and Greek letters that look like Latin ones (Unicode's confusables, the common part). */
const HOMOGLYPHS: Record<string, string> = {
  а: "a",
  в: "b",
  е: "e",
  ё: "e",
  к: "k",
  м: "m",
  н: "h",
  о: "o",
  р: "p",
  с: "c",
  т: "t",
  у: "y",
  х: "x",
  і: "i",
  ї: "i",
  ј: "j",
  ѕ: "s",
  ԁ: "d",
  ԛ: "q",
  ԝ: "w",
  һ: "h",
  ɡ: "g",
  α: "a",
  β: "b",
  ε: "e",
  η: "n",
  ι: "i",
  κ: "k",
  ν: "v",
  ο: "o",
  ρ: "p",
  τ: "t",
  υ: "u",
  χ: "x",
  γ: "y",
  ɑ: "a",
  ı: "i",
  ȷ: "j",
  ɴ: "n",
  ʀ: "r",
  ʏ: "y",
  ᴀ: "a",
  ᴇ: "e",
  ᴏ: "o",
};
const HOMOGLYPH_CHARS = new RegExp(`[${Object.keys(HOMOGLYPHS).join("")}]`, "g");
const LATIN_LETTER = /[a-z]/;

/** Digits and symbols that stand for letters inside a word. */
const LEET: Record<string, string> = {
  "0": "o",
  "1": "i",
  "3": "e",
  "4": "a",
  "5": "s",
  "7": "t",
  "@": "a",
  $: "s",
  "!": "i",
  "|": "l",
};
const LEET_CHARS = /[013457@$!|]/g;
const LEET_BEFORE_LETTER = /[013457@$!|]\p{L}/u;

export interface Normalised {
  /** Lower case, no diacritics, look-alikes and leetspeak folded, words separated by one space. */
  folded: string;
  /** The same without the folding of look-alikes, invisible characters and leetspeak: what was written plainly. */
  plain: string;
  /** Invisible characters inside words. */
  invisibleInWords: number;
  /** Bidi control characters anywhere. */
  bidiControls: number;
  /** Words mixing Latin letters with Cyrillic or Greek look-alikes. */
  homoglyphWords: number;
  /** Words with digits or symbols standing for letters. */
  leetWords: number;
  /** Runs of single letters joined back into words ("i g n o r e"). */
  spacedWords: number;
}

function stripDiacritics(text: string): string {
  // ASCII has none; decomposing it would only cost time.
  if (!/[^\t-\x7f]/.test(text)) return text;
  return text
    .normalize("NFD")
    .replace(/\p{M}+/gu, "")
    .replace(/ß/g, "ss");
}

/** Anything but letters and digits becomes one space: "don't" is "don t", "system:" is "system". */
function words(text: string): string {
  return text.replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

const SPACED_LETTERS = /(?:^| )((?:[a-z] ){3,}[a-z])(?= |$)/g;

export function normalise(input: string): Normalised {
  const nfkc = input.normalize("NFKC");
  const invisibleInWords = nfkc.match(INVISIBLE_IN_WORD)?.length ?? 0;
  const bidiControls = nfkc.match(BIDI)?.length ?? 0;
  const visible = nfkc.replace(INVISIBLE, "").replace(BIDI, "");
  const lower = visible.toLowerCase();

  let homoglyphWords = 0;
  let leetWords = 0;
  // Most text has neither look-alikes nor leetspeak: then there is no word to fold, and no need to look at each.
  const mayFold = HOMOGLYPH_CHARS.test(lower) || LEET_BEFORE_LETTER.test(lower);
  HOMOGLYPH_CHARS.lastIndex = 0;
  const tokens = (mayFold ? lower.split(/\s+/) : [lower]).map((token) => {
    if (!mayFold) return token;
    let out = token;
    if (HOMOGLYPH_CHARS.test(out)) {
      HOMOGLYPH_CHARS.lastIndex = 0;
      const mapped = out.replace(HOMOGLYPH_CHARS, (char) => HOMOGLYPHS[char] ?? char);
      // Only a word that mixes scripts is a disguise; Russian or Greek text is just Russian or Greek.
      if (LATIN_LETTER.test(out.replace(HOMOGLYPH_CHARS, ""))) homoglyphWords++;
      out = mapped;
    }
    HOMOGLYPH_CHARS.lastIndex = 0;
    // Symbols at a word's edges are punctuation ("wow!"); inside it they stand for letters ("h!dden").
    const core = out.replace(/^[^\p{L}\p{N}@$]+|[^\p{L}\p{N}@$]+$/gu, "");
    // A symbol followed by a letter ("1gn0re", "pr3v10us"); digits that end a word are a number ("base32", "gpt4").
    if (LEET_BEFORE_LETTER.test(core) && /\p{L}{2}/u.test(core)) {
      out = out.replace(
        core,
        core.replace(LEET_CHARS, (char) => LEET[char] ?? char),
      );
      leetWords++;
    }
    return out;
  });
  let spacedWords = 0;
  const folded = words(stripDiacritics(tokens.join(" "))).replace(SPACED_LETTERS, (match, run: string) => {
    spacedWords++;
    return `${match.startsWith(" ") ? " " : ""}${run.replace(/ /g, "")}`;
  });
  const plain = words(stripDiacritics(nfkc.toLowerCase()));
  return { folded, plain, invisibleInWords, bidiControls, homoglyphWords, leetWords, spacedWords };
}
