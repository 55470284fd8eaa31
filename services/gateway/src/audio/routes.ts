import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Multipart } from "@fastify/multipart";
import { trace } from "@opentelemetry/api";
import { maxAudioSeconds } from "@llmaas/catalogue";
import {
  audioCancel,
  audioTranscribe,
  MAX_AUDIO_UPLOAD_BYTES,
  PlatformError,
  WHISPER_LANGUAGES,
  type AudioTask,
  type TranscriptionResult,
} from "@llmaas/contracts";
import type { Bus } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import { apiKeyOf, attributionOf } from "../auth/index.js";
import { resolveModel } from "../model-resolution.js";
import { admitIfEnforced, transcriptionCost, type Quotas } from "../quotas/index.js";
import { newId } from "../routes/chat.js";
import { timeoutError } from "../inference.js";
import { RESPONSE_FORMATS, renderTranscript, type ResponseFormat } from "./formats.js";

export interface AudioRouteOptions {
  bus: Bus;
  catalogue: Catalogue;
  /** How long a transcription may take before it is cancelled and answered with a timeout. */
  requestTimeoutMs: number;
  /** null where enforcement is switched off. */
  quotas: Quotas | null;
}

/** Text fields of the form, each at most this long: a prompt is a few hundred tokens, not megabytes. */
const MAX_FIELD_BYTES = 64 * 1024;

/** The multipart limits: one file of up to 25 MB, a handful of short fields. Over them is a 413 or a 400. */
export const MULTIPART_LIMITS = {
  fileSize: MAX_AUDIO_UPLOAD_BYTES,
  files: 1,
  fields: 16,
  fieldSize: MAX_FIELD_BYTES,
  parts: 20,
};

/** What each endpoint reads from its form; anything else is refused by name, as OpenAI refuses unknown arguments. */
const FIELDS: Record<AudioTask, readonly string[]> = {
  transcribe: [
    "model",
    "language",
    "prompt",
    "response_format",
    "temperature",
    "timestamp_granularities[]",
    "stream",
  ],
  translate: ["model", "prompt", "response_format", "temperature"],
};

interface AudioForm {
  file: { bytes: Buffer; filename: string };
  fields: Map<string, string[]>;
}

function invalid(message: string, param: string): PlatformError {
  return new PlatformError("invalid_request", message, param);
}

/** Reads the whole form: the file into memory (never to disk), each field as text. */
async function readForm(request: FastifyRequest, task: AudioTask): Promise<AudioForm> {
  if (!request.isMultipart()) {
    throw new PlatformError(
      "invalid_request",
      "The request must be multipart/form-data, with the audio in a `file` part.",
    );
  }
  let file: AudioForm["file"] | undefined;
  const fields = new Map<string, string[]>();
  const parts: AsyncIterableIterator<Multipart> = request.parts();
  for await (const part of parts) {
    if (part.type === "file") {
      if (part.fieldname !== "file") {
        part.file.resume();
        throw invalid(
          `Unrecognized file part: ${part.fieldname}; the audio goes in \`file\`.`,
          part.fieldname,
        );
      }
      // toBuffer throws fastify's 413 as soon as the upload passes the limit, without reading the rest.
      file = { bytes: await part.toBuffer(), filename: part.filename };
      continue;
    }
    const name = part.fieldname;
    if (!FIELDS[task].includes(name)) {
      throw invalid(`Unrecognized request argument supplied: ${name}`, name);
    }
    if (part.valueTruncated) throw invalid(`${name} is longer than ${MAX_FIELD_BYTES} bytes.`, name);
    const values = fields.get(name) ?? [];
    values.push(typeof part.value === "string" ? part.value : String(part.value));
    fields.set(name, values);
  }
  if (!file) throw invalid("Missing required parameter: 'file'.", "file");
  if (file.bytes.length === 0) throw invalid("The uploaded file is empty.", "file");
  return { file, fields };
}

function single(fields: Map<string, string[]>, name: string): string | undefined {
  const values = fields.get(name);
  if (values && values.length > 1) throw invalid(`${name} was given ${values.length} times.`, name);
  return values?.[0];
}

interface AudioParameters {
  model: string;
  language: string | null;
  prompt: string | null;
  temperature: number | null;
  format: ResponseFormat;
  granularities: { segment: boolean; word: boolean };
}

function parametersOf(fields: Map<string, string[]>): AudioParameters {
  const model = single(fields, "model");
  if (!model) throw invalid("Missing required parameter: 'model'.", "model");
  const language = single(fields, "language") || null;
  if (language !== null && !Object.hasOwn(WHISPER_LANGUAGES, language)) {
    throw invalid(
      `Invalid language '${language}': expected an ISO-639-1 code whisper knows, such as 'en' or 'de'.`,
      "language",
    );
  }
  const temperatureText = single(fields, "temperature");
  const temperature =
    temperatureText === undefined || temperatureText === "" ? null : Number(temperatureText);
  if (temperature !== null && !(temperature >= 0 && temperature <= 1)) {
    throw invalid(`Invalid temperature '${temperatureText}': expected a number from 0 to 1.`, "temperature");
  }
  const formatText = single(fields, "response_format") ?? "json";
  if (!(RESPONSE_FORMATS as readonly string[]).includes(formatText)) {
    throw invalid(
      `Invalid response_format '${formatText}': expected one of ${RESPONSE_FORMATS.join(", ")}.`,
      "response_format",
    );
  }
  const format = formatText as ResponseFormat;
  if (single(fields, "stream") === "true") {
    throw invalid("Streaming transcriptions are not supported; leave out stream.", "stream");
  }
  const requested = fields.get("timestamp_granularities[]") ?? [];
  for (const granularity of requested) {
    if (granularity !== "segment" && granularity !== "word") {
      throw invalid(
        `Invalid timestamp_granularities[] '${granularity}': expected segment or word.`,
        "timestamp_granularities[]",
      );
    }
  }
  if (requested.length > 0 && format !== "verbose_json") {
    throw invalid(
      "timestamp_granularities[] requires response_format verbose_json.",
      "timestamp_granularities[]",
    );
  }
  const granularities =
    requested.length === 0
      ? { segment: true, word: false }
      : { segment: requested.includes("segment"), word: requested.includes("word") };
  return { model, language, prompt: single(fields, "prompt") ?? null, temperature, format, granularities };
}

/** srt and vtt are made of segments; json and text need only the text, which either pass gives. */
function timestampsFor(parameters: AudioParameters): { segments: boolean; words: boolean } {
  switch (parameters.format) {
    case "srt":
    case "vtt":
      return { segments: true, words: false };
    case "verbose_json":
      return { segments: parameters.granularities.segment, words: parameters.granularities.word };
    case "json":
    case "text":
      return { segments: false, words: false };
  }
}

/**
 * `POST /v1/audio/transcriptions` and `/v1/audio/translations` (docs/audio.md): the upload is read into memory, sent
 * whole to an audio worker of the model, which decodes, transcribes and meters it, and answered in the requested
 * format. A client that leaves cancels the transcription.
 */
export function registerAudioRoutes(app: FastifyInstance, options: AudioRouteOptions): void {
  const { bus, catalogue } = options;

  for (const task of ["transcribe", "translate"] as const) {
    const path = task === "transcribe" ? "/v1/audio/transcriptions" : "/v1/audio/translations";
    app.post(path, async (request, reply) => {
      const form = await readForm(request, task);
      const parameters = parametersOf(form.fields);
      const apiKey = apiKeyOf(request);
      const { model, headers } = resolveModel(catalogue, parameters.model, "audio", apiKey);
      void reply.headers(headers);
      const requestId = newId(task === "transcribe" ? "transcr" : "transl");
      void reply.header("x-request-id", requestId);
      trace.getActiveSpan()?.setAttributes({
        "gen_ai.operation.name": task === "transcribe" ? "transcription" : "translation",
        "gen_ai.request.model": model.id,
        "gen_ai.response.id": requestId,
      });

      const admission = await admitIfEnforced(
        options.quotas,
        reply,
        apiKey,
        model,
        transcriptionCost(model, form.file.bytes.length, maxAudioSeconds(model)),
      );
      let report: (
        usage: { promptTokens: number; completionTokens: number; audioSeconds: number } | null,
      ) => void = () => undefined;
      admission?.settleWhen([
        {
          requestId,
          usage: new Promise((resolve) => {
            report = resolve;
          }),
        },
      ]);

      // A client that goes before the answer cancels the transcription; its worker meters what it did.
      let answered = false;
      reply.raw.on("close", () => {
        if (!answered) bus.publish(audioCancel, audioCancel.subject, { requestId });
      });
      let result: TranscriptionResult;
      try {
        result = await bus.request(
          audioTranscribe,
          audioTranscribe.forModel(model.id),
          {
            requestId,
            model: model.id,
            principal: attributionOf(apiKey),
            task,
            audio: form.file.bytes.toString("base64"),
            language: task === "translate" ? null : parameters.language,
            prompt: parameters.prompt,
            temperature: parameters.temperature,
            timestamps: timestampsFor(parameters),
          },
          { timeoutMs: options.requestTimeoutMs },
        );
      } catch (error) {
        // Audio the worker refused (undecodable, too long) was never transcribed and is never metered, so its
        // reservation goes back at once; after any other failure the worker may have transcribed part of it, and
        // metering has the last word.
        const refused = error instanceof PlatformError && error.code === "invalid_request";
        report(refused ? { promptTokens: 0, completionTokens: 0, audioSeconds: 0 } : null);
        if (error instanceof PlatformError && error.code === "request_timeout") {
          bus.publish(audioCancel, audioCancel.subject, { requestId });
          throw timeoutError();
        }
        throw error;
      } finally {
        answered = true;
      }
      report({ promptTokens: 0, completionTokens: 0, audioSeconds: result.billedSeconds });
      const rendered = renderTranscript(result, parameters.format, task, parameters.granularities);
      return reply.type(rendered.contentType).send(rendered.body);
    });
  }
}
