import t from "tap";
import { addCalendarMonths, CatalogueError, isServable, parseCatalogue } from "../src/index.js";

const entry = (id: string, lifecycle = "") => `
  - id: ${id}
    owned_by: acme
    family: acme-lm
    license: apache-2.0
    created: 2025-01-01
    source: models/${id}.gguf
    capabilities: [chat]
    pricing: {}
    context_length: 4096${lifecycle && `\n    lifecycle: ${lifecycle}`}`;

const deprecated = (on: string, retires: string, replacement = "new") =>
  `{ status: deprecated, deprecated_on: ${on}, retires_on: ${retires}, replacement: ${replacement} }`;

const retired = (on: string, replacement = "new") =>
  `{ status: retired, retired_on: ${on}, replacement: ${replacement} }`;

void t.test("three calendar months, with short months clamped to their last day", async (t) => {
  t.equal(addCalendarMonths("2026-01-15", 3), "2026-04-15");
  t.equal(addCalendarMonths("2025-11-30", 3), "2026-02-28", "Nov 30 → Feb 28");
  t.equal(addCalendarMonths("2027-11-30", 3), "2028-02-29", "Nov 30 → Feb 29 in a leap year");
  t.equal(addCalendarMonths("2026-08-31", 3), "2026-11-30", "Aug 31 → Nov 30");
  t.equal(addCalendarMonths("2026-10-31", 3), "2027-01-31", "across the year");
  t.equal(addCalendarMonths("2026-12-01", 3), "2027-03-01");
});

void t.test("a retirement must come at least 3 calendar months after the deprecation", async (t) => {
  const load = (on: string, retires: string) =>
    parseCatalogue(`models:${entry("new")}${entry("old", deprecated(on, retires))}`, "/");
  t.doesNotThrow(() => load("2026-01-15", "2026-04-15"), "exactly 3 months");
  t.throws(() => load("2026-01-15", "2026-04-14"), /2026-04-15 at the earliest/, "a day short");
  t.doesNotThrow(() => load("2025-11-30", "2026-02-28"), "Nov 30 → Feb 28");
  t.throws(() => load("2025-11-30", "2026-02-27"), CatalogueError);
  t.doesNotThrow(() => load("2027-11-30", "2028-02-29"), "Nov 30 → Feb 29 in a leap year");
  t.throws(
    () => load("2027-11-30", "2028-02-28"),
    /less than 3 calendar months/,
    "leap year: Feb 28 is short",
  );
  t.throws(() => load("2026-04-15", "2026-01-15"), CatalogueError, "a retirement before the deprecation");
  t.throws(() => load("2026-02-30", "2026-06-01"), /deprecated_on/, "not a calendar day");
});

void t.test("replacements must exist, not be retired, and lead to an active model", async (t) => {
  const load = (...entries: string[]) => parseCatalogue(`models:${entries.join("")}`, "/");
  const notice = (replacement: string) => deprecated("2026-01-01", "2026-06-01", replacement);
  t.throws(() => load(entry("old", notice("ghost"))), /replacement ghost, which is not a model/);
  t.throws(() => load(entry("gone", retired("2025-06-01", "ghost"))), /not a model/);
  t.throws(
    () => load(entry("new"), entry("gone", retired("2025-06-01")), entry("old", notice("gone"))),
    /model old names replacement gone, which is retired/,
  );
  t.throws(
    () =>
      load(
        entry("new"),
        entry("gone", retired("2025-06-01", "gone2")),
        entry("gone2", retired("2025-06-01")),
      ),
    /which is retired/,
  );
  t.throws(() => load(entry("old", notice("old"))), /loop back to old/, "a model replacing itself");
  t.throws(() => load(entry("a", notice("b")), entry("b", notice("a"))), /loop back/);
  t.doesNotThrow(
    () => load(entry("new"), entry("mid", notice("new")), entry("old", notice("mid"))),
    "a deprecated replacement is fine when its own chain ends at an active model",
  );
});

void t.test("aliases may not point to a retired model", async (t) => {
  t.throws(
    () =>
      parseCatalogue(
        `models:${entry("new")}${entry("gone", retired("2025-06-01"))}\naliases:\n  x: gone`,
        "/",
      ),
    /alias x points to retired model gone/,
  );
});

void t.test("a deprecated model is retired once its retires_on day starts", async (t) => {
  const catalogue = parseCatalogue(
    `models:${entry("new")}${entry("old", deprecated("2026-01-15", "2026-04-15"))}${entry("gone", retired("2025-12-01"))}`,
    "/",
  );
  const old = catalogue.find("old");
  const gone = catalogue.find("gone");
  const current = catalogue.find("new");
  if (!old || !gone || !current) throw new Error("models missing");

  const before = new Date("2026-04-14T23:59:59.999Z");
  t.same(catalogue.lifecycleAt(old, before), {
    status: "deprecated",
    deprecated_on: "2026-01-15",
    retires_on: "2026-04-15",
    replacement: "new",
  });
  t.ok(isServable(old, before));

  const at = new Date("2026-04-15T00:00:00Z");
  t.same(catalogue.lifecycleAt(old, at), {
    status: "retired",
    deprecated_on: "2026-01-15",
    retired_on: "2026-04-15",
    replacement: "new",
  });
  t.notOk(isServable(old, at));

  t.same(catalogue.lifecycleAt(gone, before), {
    status: "retired",
    retired_on: "2025-12-01",
    replacement: "new",
  });
  t.notOk(isServable(gone, new Date("2020-01-01")), "a declared retirement holds whatever the clock says");
  t.same(catalogue.lifecycleAt(current, at), { status: "active" });
});

void t.test("the replacement clients see skips models retired since", async (t) => {
  const catalogue = parseCatalogue(
    `models:${entry("new")}${entry("mid", deprecated("2026-01-01", "2026-04-01"))}${entry(
      "old",
      deprecated("2026-01-01", "2026-09-01", "mid"),
    )}`,
    "/",
  );
  const old = catalogue.find("old");
  if (!old) throw new Error("old missing");
  t.match(catalogue.lifecycleAt(old, new Date("2026-03-01")), { status: "deprecated", replacement: "mid" });
  t.match(catalogue.lifecycleAt(old, new Date("2026-05-01")), { status: "deprecated", replacement: "new" });
});
