import { z } from "zod";

/**
 * A model's prices, in the platform's currency (`CURRENCY`). Money never goes through floating point: prices are
 * kept as the decimal strings the catalogue wrote and as exact integers of pico-units, and costs are computed with
 * BigInt.
 */
export interface ModelPricing {
  /** As written in the catalogue, normalised decimal strings, e.g. "0.2", "0". */
  inputPerMillion: string;
  outputPerMillion: string;
  audioPerMinute: string;
  /** Exact integer prices in pico-units (1e-12 of the currency): per token, per token, per minute. */
  inputPicoPerToken: bigint;
  outputPicoPerToken: bigint;
  audioPicoPerMinute: bigint;
}

/** Prices have at most this many decimal places, so that a price per million tokens is whole pico-units per token. */
const PRICE_DECIMALS = 6;

/**
 * Digits a YAML number is trusted with: every decimal of up to 15 significant digits survives the trip through a
 * double and back through `String`, so the string is the one the catalogue wrote. Longer ones must be quoted.
 */
const NUMBER_SIGNIFICANT_DIGITS = 15;

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * `text` as a normalised non-negative decimal (no leading or trailing zeros, no trailing point), or the reason it is
 * not a price.
 */
function normaliseDecimal(field: string, text: string): { value: string } | { problem: string } {
  if (/^-\d/.test(text)) return { problem: `${field} is negative (${text}); prices are 0 or more` };
  const match = DECIMAL.exec(text);
  if (!match) {
    return { problem: `${field} is not a decimal number (${JSON.stringify(text)}); write e.g. 0.15` };
  }
  const whole = match[1]!.replace(/^0+(?=\d)/, "");
  const fraction = (match[2] ?? "").replace(/0+$/, "");
  if (fraction.length > PRICE_DECIMALS) {
    return {
      problem: `${field} has ${fraction.length} decimal places (${text}); prices have at most ${PRICE_DECIMALS}`,
    };
  }
  return { value: fraction ? `${whole}.${fraction}` : whole };
}

function significantDigits(decimal: string): number {
  return decimal.replace(".", "").replace(/^0+/, "").length;
}

/** One price: a YAML number or a decimal string, 0 when absent. */
function price(field: string) {
  return z
    .union([z.number(), z.string()], {
      error: `${field} is a number or a decimal string, e.g. 0.15 or "0.15"`,
    })
    .optional()
    .transform((input, ctx): string => {
      if (input === undefined) return "0";
      let text: string;
      if (typeof input === "number") {
        if (!Number.isFinite(input)) {
          ctx.addIssue({ code: "custom", message: `${field} is not a finite number (${input})` });
          return z.NEVER;
        }
        text = String(input);
        if (/e/i.test(text)) {
          ctx.addIssue({
            code: "custom",
            message: `${field} is written in exponent notation (${text}); write it as a plain decimal`,
          });
          return z.NEVER;
        }
      } else {
        text = input;
      }
      const result = normaliseDecimal(field, text);
      if ("problem" in result) {
        ctx.addIssue({ code: "custom", message: result.problem });
        return z.NEVER;
      }
      if (typeof input === "number" && significantDigits(result.value) > NUMBER_SIGNIFICANT_DIGITS) {
        ctx.addIssue({
          code: "custom",
          message:
            `${field} has more than ${NUMBER_SIGNIFICANT_DIGITS} significant digits, more than a YAML number ` +
            `keeps exactly; quote it ("${result.value}")`,
        });
        return z.NEVER;
      }
      return result.value;
    });
}

/** A normalised decimal with at most PRICE_DECIMALS places, times 10^`exponent` (≥ PRICE_DECIMALS), exactly. */
function scaled(decimal: string, exponent: number): bigint {
  const [whole, fraction = ""] = decimal.split(".");
  return BigInt(whole! + fraction.padEnd(exponent, "0"));
}

/** X per million tokens is X·1e6 pico-units per token; Y per minute is Y·1e12 pico-units per minute. */
function toModelPricing(prices: {
  inputPerMillion: string;
  outputPerMillion: string;
  audioPerMinute: string;
}): ModelPricing {
  return {
    ...prices,
    inputPicoPerToken: scaled(prices.inputPerMillion, 6),
    outputPicoPerToken: scaled(prices.outputPerMillion, 6),
    audioPicoPerMinute: scaled(prices.audioPerMinute, 12),
  };
}

/**
 * The `pricing` of a catalogue entry. Required, so that a model is never served for free by omission; each price
 * inside defaults to 0, so `pricing: {}` states that a model is free.
 */
export const Pricing = z
  .strictObject(
    {
      /** Per million input tokens. */
      input_per_million: price("input_per_million"),
      /** Per million output tokens. */
      output_per_million: price("output_per_million"),
      /** Per minute of audio, billed per second. */
      audio_per_minute: price("audio_per_minute"),
    },
    {
      error: (issue) =>
        issue.input === undefined
          ? "every model states its pricing (input_per_million, output_per_million, audio_per_minute); " +
            "`pricing: {}` for a free model"
          : undefined,
    },
  )
  .transform((pricing): ModelPricing =>
    toModelPricing({
      inputPerMillion: pricing.input_per_million,
      outputPerMillion: pricing.output_per_million,
      audioPerMinute: pricing.audio_per_minute,
    }),
  );

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** Whole seconds of audio. */
  audioSeconds: number;
}

function count(name: keyof Usage, value: number): bigint {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, not ${value}`);
  }
  return BigInt(value);
}

/**
 * What `usage` costs at `pricing`, in pico-units: tokens times the price per token (exact), and audio seconds times
 * the price per minute divided by 60, rounded half up to a whole pico-unit.
 */
export function priceUsage(
  pricing: ModelPricing,
  usage: Usage,
): { inputPico: bigint; outputPico: bigint; audioPico: bigint } {
  return {
    inputPico: count("inputTokens", usage.inputTokens) * pricing.inputPicoPerToken,
    outputPico: count("outputTokens", usage.outputTokens) * pricing.outputPicoPerToken,
    audioPico: (count("audioSeconds", usage.audioSeconds) * pricing.audioPicoPerMinute + 30n) / 60n,
  };
}
