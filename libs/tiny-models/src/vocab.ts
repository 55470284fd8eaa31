// SentencePiece-style ("llama") vocabulary shared by every tiny model.

/** llama.cpp `llama_token_type` values. */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

/** SentencePiece's escaped space; llama.cpp replaces every " " with it before lookup. */
export const WORD_BOUNDARY = "\u2581";

export const IM_START = "<|im_start|>";
export const IM_END = "<|im_end|>";

const WORDS = `
  the of and to a in is it you that he was for on are with as I his they be at one have this from
  or had by not but what some we can out other were all there when up use your how said an each she
  which do their time if will way about many then them write would like so these her long make thing
  see him two has look more day could go come did number sound no most people my over know water than
  call first who may down side been now find any new work part take get place made live where after
  back little only round man year came show every good me give our under name very through just form
  sentence great think say help low line differ turn cause much mean before move right boy old too
  same tell does set three want air well also play small end put home read hand port large spell add
  even land here must big high such follow act why ask men change went light kind off need house
  picture try us again animal point mother world near build self earth father hello model token test
  chat user assistant system answer question yes ok please thanks sorry
`;

export interface TinyVocabulary {
  readonly tokens: readonly string[];
  readonly scores: readonly number[];
  readonly tokenTypes: readonly TokenType[];
  readonly unknownTokenId: number;
  readonly bosTokenId: number;
  /** `<|im_end|>`, not `</s>`: generation should stop at the end of a ChatML turn. */
  readonly eosTokenId: number;
  readonly imStartTokenId: number;
}

function buildVocabulary(): TinyVocabulary {
  const tokens: string[] = [];
  const scores: number[] = [];
  const tokenTypes: TokenType[] = [];
  const add = (text: string, type: TokenType, score = 0): number => {
    tokens.push(text);
    scores.push(score);
    tokenTypes.push(type);
    return tokens.length - 1;
  };

  const unknownTokenId = add("<unk>", TokenType.UNKNOWN);
  const bosTokenId = add("<s>", TokenType.CONTROL);
  add("</s>", TokenType.CONTROL);
  // Byte fallback guarantees any UTF-8 input tokenizes without hitting <unk>.
  for (let b = 0; b < 256; b++) {
    add(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, TokenType.BYTE);
  }
  const imStartTokenId = add(IM_START, TokenType.CONTROL);
  const eosTokenId = add(IM_END, TokenType.CONTROL);

  // llama.cpp's SPM tokenizer only reaches a piece by merging adjacent symbols whose
  // concatenation is itself a token, so every word brings all of its "▁"-prefixes.
  // Multi-character pieces all start with "▁", so merges can only grow a word left to
  // right and a score equal to the length makes the longest known piece win.
  const normal = new Set<string>([WORD_BOUNDARY]);
  for (let c = 0x21; c <= 0x7e; c++) normal.add(String.fromCharCode(c));
  for (const word of WORDS.split(/\s+/).filter(Boolean)) {
    const piece = [...(WORD_BOUNDARY + word)];
    for (let end = 2; end <= piece.length; end++) normal.add(piece.slice(0, end).join(""));
  }
  for (const text of normal) add(text, TokenType.NORMAL, [...text].length);

  // llama.cpp aborts on a vocabulary with repeated token texts. Unreachable by construction
  // today; it guards edits to the lists above.
  /* c8 ignore next */
  if (new Set(tokens).size !== tokens.length) throw new Error("tiny vocabulary has duplicate tokens");

  return { tokens, scores, tokenTypes, unknownTokenId, bosTokenId, eosTokenId, imStartTokenId };
}

export const tinyVocabulary: TinyVocabulary = buildVocabulary();
