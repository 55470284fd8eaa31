#!/usr/bin/env node
// The CLI ships as TypeScript source, like the services: tsx compiles it on load.
import { URL } from "node:url";
import { register } from "tsx/esm/api";

register();
await import(new URL("../src/main.ts", import.meta.url).href);
