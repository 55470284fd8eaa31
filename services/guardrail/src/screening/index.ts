import type { GuardrailCategory } from "@llmaas/contracts";
import { decodedSegments } from "./decode.js";
import { FAMILIES, FRAMINGS, STRONG_HARMS, WEAK_HARMS } from "./families.js";
import { normalise } from "./normalise.js";
import { suffixStrength } from "./suffix.js";

export interface TextScreening {
  /** 0 to 1, three decimals. A text is flagged when its score reaches the policy's threshold. */
  score: number;
  /** The categories whose signals fired, strongest first, each once; empty if none did. */
  categories: GuardrailCategory[];
}

/** The threshold at which the development set's figures hold (evaluation.ts); the platform's default. */
export const DEFAULT_THRESHOLD = 0.5;

/** A category below this strength is not reported: one weak hint is not worth naming. */
const REPORTED = 0.2;
/** Framing is judged in windows of this many characters (half overlapping), so a long document's words far apart
 * never add up to a jailbreak. */
const FRAMING_WINDOW = 2_000;
/** Encoded segments are decoded this deep at most (base64 of base64 of ...). */
const MAX_DEPTH = 2;

type Strengths = Map<GuardrailCategory, number>;

/** Independent evidence: 1 − Π(1 − s). */
function add(strengths: Strengths, category: GuardrailCategory, strength: number): void {
  const current = strengths.get(category) ?? 0;
  strengths.set(category, 1 - (1 - current) * (1 - strength));
}

function phraseStrengths(text: string): Strengths {
  const strengths: Strengths = new Map();
  for (const family of FAMILIES) {
    family.pattern.lastIndex = 0;
    let best = 0;
    for (const match of text.matchAll(family.pattern)) {
      const stronger = family.strongerWith?.words.test(match[0]) ? family.strongerWith.strength : 0;
      best = Math.max(best, family.strength, stronger);
      if (best >= (family.strongerWith?.strength ?? family.strength)) break;
    }
    if (
      best > 0 &&
      family.strongerWith?.anywhere &&
      best < family.strongerWith.strength &&
      family.strongerWith.words.test(text)
    ) {
      best = family.strongerWith.strength;
    }
    if (best > 0) add(strengths, family.category, best);
  }
  return strengths;
}

/**
 * A harmful ask wrapped in a persona, a fiction, a disclaimer or a request for details (PAIR-style jailbreaks): at
 * least two kinds of framing and something harmful in the same window. A persona weighs most (the model is asked to
 * be someone else), then a disclaimer and a request for details; each distinct harm adds, whether strong or weak.
 */
const FRAMING_WEIGHTS = [0.2, 0.05, 0.1, 0.1] as const;
const HARM_WEIGHT = 0.1;
const HARMS_COUNTED = 3;

function framingStrength(text: string): number {
  let best = 0;
  const step = FRAMING_WINDOW / 2;
  for (let start = 0; start === 0 || start + step < text.length; start += step) {
    const window = text.slice(start, start + FRAMING_WINDOW);
    const present = FRAMINGS.map((framing) => framing.test(window));
    if (present.filter(Boolean).length < 2) continue;
    const strong = new Set([...window.matchAll(STRONG_HARMS)].map((match) => match[1])).size;
    const weak = new Set([...window.matchAll(WEAK_HARMS)].map((match) => match[1])).size;
    if (strong + weak === 0) continue;
    const framing = present.reduce((sum, on, index) => sum + (on ? (FRAMING_WEIGHTS[index] ?? 0) : 0), 0);
    const harm = HARM_WEIGHT * (Math.min(strong, HARMS_COUNTED) + Math.min(weak, HARMS_COUNTED));
    best = Math.max(best, Math.min(0.95, framing + harm));
  }
  return best;
}

function strengthsOf(text: string, depth: number): Strengths {
  const normalised = normalise(text);
  const strengths = phraseStrengths(normalised.folded);

  // A phrase that only the folding found was hidden on purpose.
  const phrases = Math.max(0, ...[...strengths.values()]);
  if (phrases >= REPORTED && normalised.folded !== normalised.plain) {
    const plain = Math.max(0, ...[...phraseStrengths(normalised.plain).values()]);
    if (plain < phrases) add(strengths, "obfuscation", 0.4);
  }
  const framing = framingStrength(normalised.folded);
  if (framing > 0) add(strengths, "role_play_jailbreak", framing);
  const suffix = suffixStrength(text);
  if (suffix > 0) add(strengths, "adversarial_suffix", suffix);

  // Hiding marks alone say little (emoji and some scripts use joiners); they add to an attack, not make one.
  const disguise =
    Math.min(0.3, 0.1 * normalised.invisibleInWords) +
    (normalised.bidiControls > 0 ? 0.2 : 0) +
    (normalised.homoglyphWords >= 2 ? 0.2 : 0) +
    (normalised.spacedWords > 0 ? 0.1 : 0);
  if (disguise > 0) add(strengths, "obfuscation", Math.min(0.45, disguise));

  if (depth < MAX_DEPTH) {
    for (const decoded of decodedSegments(text)) {
      const inner = strengthsOf(decoded, depth + 1);
      const innerAttack = Math.max(0, ...[...inner.values()]);
      if (innerAttack < REPORTED) continue;
      for (const [category, strength] of inner) add(strengths, category, strength);
      add(strengths, "obfuscation", 0.5);
    }
  }
  return strengths;
}

/**
 * Screens one text: pure, synchronous, no I/O. The text is never kept, logged or returned; only the score and the
 * categories leave this function.
 */
export function screenText(text: string): TextScreening {
  const strengths = strengthsOf(text, 0);
  let clean = 1;
  for (const strength of strengths.values()) clean *= 1 - strength;
  const categories = [...strengths.entries()]
    .filter(([, strength]) => strength >= REPORTED)
    .sort(([, a], [, b]) => b - a)
    .map(([category]) => category);
  return { score: Math.round((1 - clean) * 1000) / 1000, categories };
}
