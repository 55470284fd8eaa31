/**
 * Every secret a test run issued or configured: keys from API answers, the operator token, the server's HMAC key,
 * identity tokens. When the stack stops, none of them may appear in any service's log or in the audit log.
 */
export class SecretRegistry {
  private readonly secrets = new Map<string, string>();

  add(kind: string, value: string): void {
    this.secrets.set(value, kind);
  }

  /** Remembers every key secret (`value` fields, as OpenAI's answers show them once) anywhere in a JSON answer. */
  collect(json: unknown): void {
    if (Array.isArray(json)) {
      json.forEach((item) => this.collect(item));
      return;
    }
    if (!json || typeof json !== "object") return;
    for (const [field, value] of Object.entries(json)) {
      if (field === "value" && typeof value === "string" && value.startsWith("sk-lm-"))
        this.add("key", value);
      else this.collect(value);
    }
  }

  get size(): number {
    return this.secrets.size;
  }

  /** What kind of secret each leak was, and where; never the secret itself. */
  leaksIn(places: Record<string, string[]>): string[] {
    const leaks: string[] = [];
    for (const [place, texts] of Object.entries(places)) {
      for (const [secret, kind] of this.secrets) {
        const count = texts.filter((text) => text.includes(secret)).length;
        if (count > 0) leaks.push(`a ${kind} secret appears in ${count} line(s) of ${place}`);
      }
    }
    return leaks;
  }
}
