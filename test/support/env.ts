import { z } from "zod";
import { parseConfig } from "@llmaas/config";

/** What the tests need from their machine, parsed once; the defaults are the CI machine's services. */
export const testEnv = parseConfig(
  "tests",
  {
    NATS_URL: z.string().default("nats://127.0.0.1:4222"),
    /** An administrative connection: each test run creates, and drops, a database of its own through it. */
    TEST_POSTGRES_URL: z.string().default("postgres://postgres@127.0.0.1:5432/postgres"),
    /** Set to 1 to see the services' logs as the tests run. */
    TEST_SERVICE_LOGS: z.enum(["0", "1"]).default("0"),
  },
  process.env,
);
