import { z } from "zod";
import { AuthPrincipal } from "./auth.js";
import { requestSubject, eventSubject } from "./definitions.js";
import { InferenceCancel, subjectToken } from "./subjects.js";

// ---------------------------------------------------------------------------------------------------------------
// audio: transcription and translation on whisper.cpp (docs/audio.md)

/** OpenAI's upload limit for `/v1/audio/*`, in bytes: the gateway answers 413 above it. */
export const MAX_AUDIO_UPLOAD_BYTES = 25 * 1024 * 1024;

/**
 * The languages whisper knows, by the code a request names them with, and the name verbose_json reports (OpenAI's
 * `"language": "english"`). The same table as whisper.cpp's own.
 */
export const WHISPER_LANGUAGES: Readonly<Record<string, string>> = {
  en: "english",
  zh: "chinese",
  de: "german",
  es: "spanish",
  ru: "russian",
  ko: "korean",
  fr: "french",
  ja: "japanese",
  pt: "portuguese",
  tr: "turkish",
  pl: "polish",
  ca: "catalan",
  nl: "dutch",
  ar: "arabic",
  sv: "swedish",
  it: "italian",
  id: "indonesian",
  hi: "hindi",
  fi: "finnish",
  vi: "vietnamese",
  he: "hebrew",
  uk: "ukrainian",
  el: "greek",
  ms: "malay",
  cs: "czech",
  ro: "romanian",
  da: "danish",
  hu: "hungarian",
  ta: "tamil",
  no: "norwegian",
  th: "thai",
  ur: "urdu",
  hr: "croatian",
  bg: "bulgarian",
  lt: "lithuanian",
  la: "latin",
  mi: "maori",
  ml: "malayalam",
  cy: "welsh",
  sk: "slovak",
  te: "telugu",
  fa: "persian",
  lv: "latvian",
  bn: "bengali",
  sr: "serbian",
  az: "azerbaijani",
  sl: "slovenian",
  kn: "kannada",
  et: "estonian",
  mk: "macedonian",
  br: "breton",
  eu: "basque",
  is: "icelandic",
  hy: "armenian",
  ne: "nepali",
  mn: "mongolian",
  bs: "bosnian",
  kk: "kazakh",
  sq: "albanian",
  sw: "swahili",
  gl: "galician",
  mr: "marathi",
  pa: "punjabi",
  si: "sinhala",
  km: "khmer",
  sn: "shona",
  yo: "yoruba",
  so: "somali",
  af: "afrikaans",
  oc: "occitan",
  ka: "georgian",
  be: "belarusian",
  tg: "tajik",
  sd: "sindhi",
  gu: "gujarati",
  am: "amharic",
  yi: "yiddish",
  lo: "lao",
  uz: "uzbek",
  fo: "faroese",
  ht: "haitian creole",
  ps: "pashto",
  tk: "turkmen",
  nn: "nynorsk",
  mt: "maltese",
  sa: "sanskrit",
  lb: "luxembourgish",
  my: "myanmar",
  bo: "tibetan",
  tl: "tagalog",
  mg: "malagasy",
  as: "assamese",
  tt: "tatar",
  haw: "hawaiian",
  ln: "lingala",
  ha: "hausa",
  ba: "bashkir",
  jw: "javanese",
  su: "sundanese",
  yue: "cantonese",
};

/** What whisper is asked to do: write down what is said, or write it down in English. */
export const AudioTask = z.enum(["transcribe", "translate"]);
export type AudioTask = z.infer<typeof AudioTask>;

export const TranscriptionRequest = z.object({
  /** Also the usage event's id: one transcription is metered once. */
  requestId: z.string().min(1),
  model: z.string().min(1),
  principal: AuthPrincipal,
  task: AudioTask,
  /**
   * The uploaded file exactly as the client sent it, in base64: the worker identifies and decodes the container, so
   * the gateway never parses audio. Larger than one NATS message, it crosses the bus through libs/bus's large-body
   * transfer, in memory only.
   */
  audio: z.base64().min(1),
  /** A code of `WHISPER_LANGUAGES`, or null to let the model detect it. Translation always writes English. */
  language: z
    .string()
    .refine((code) => Object.hasOwn(WHISPER_LANGUAGES, code), "not a language whisper knows")
    .nullable(),
  /** Text to condition the model on (a previous segment's transcript, spellings of names). */
  prompt: z.string().nullable(),
  /** 0 to 1; null is whisper's default schedule (0, raised on a failed window). */
  temperature: z.number().min(0).max(1).nullable(),
  /**
   * Which timestamps the answer needs: segments for srt, vtt and verbose_json's `segment` granularity, words for its
   * `word` granularity. Each is a decoding pass of its own (whisper.cpp reports words as one-token segments), so the
   * worker runs only what is asked; with neither it runs the segment pass for the text.
   */
  timestamps: z.object({ segments: z.boolean(), words: z.boolean() }),
});
export type TranscriptionRequest = z.infer<typeof TranscriptionRequest>;

export const TranscriptSegment = z.object({
  /** Seconds from the start of the audio. */
  start: z.number().nonnegative(),
  end: z.number().nonnegative(),
  text: z.string(),
});
export type TranscriptSegment = z.infer<typeof TranscriptSegment>;

export const TranscriptWord = z.object({
  word: z.string(),
  start: z.number().nonnegative(),
  end: z.number().nonnegative(),
});
export type TranscriptWord = z.infer<typeof TranscriptWord>;

export const TranscriptionResult = z.object({
  workerId: z.string(),
  /** The language written, as an ISO-639-1 code (`en` for a translation). */
  language: z.string(),
  /** The decoded audio's exact length: samples at 16 kHz, divided by 16,000. */
  durationSeconds: z.number().nonnegative(),
  /** What was metered: the duration rounded up to a whole second. */
  billedSeconds: z.number().int().nonnegative(),
  /** Temperature the model decoded with. */
  temperature: z.number().min(0).max(1),
  text: z.string(),
  /** Empty unless the request asked for segments (or for no words). */
  segments: z.array(TranscriptSegment),
  /** null unless the request asked for words. */
  words: z.array(TranscriptWord).nullable(),
});
export type TranscriptionResult = z.infer<typeof TranscriptionResult>;

/** Workers of one audio model share a queue group on this subject; the reply is the whole transcript. */
export const audioTranscribe = {
  ...requestSubject("audio.v1.transcribe.*", TranscriptionRequest, TranscriptionResult),
  forModel: (modelId: string) => `audio.v1.transcribe.${subjectToken(modelId)}`,
  queueGroup: (modelId: string) => `audio-worker.${subjectToken(modelId)}`,
};

/** Broadcast to every audio worker when a client leaves: the one transcribing the request stops. */
export const audioCancel = eventSubject("audio.v1.cancel", InferenceCancel);
