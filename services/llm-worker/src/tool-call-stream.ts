/**
 * Turns the text of a grammar-forced tool call, `{"name": "<name>", "arguments": <json>}`, into OpenAI-style
 * deltas while it streams: the call is announced as soon as its name is complete, then the arguments flow through,
 * holding back only what may be the wrapper's closing brace.
 */
const HEAD = /^\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*/;

export interface ToolCallDelta {
  name?: string;
  arguments: string;
}

export class ForcedToolCallStream {
  private buffer = "";
  private named = false;

  push(text: string): ToolCallDelta[] {
    this.buffer += text;
    if (!this.named) {
      const head = HEAD.exec(this.buffer);
      if (!head) return [];
      this.named = true;
      this.buffer = this.buffer.slice(head[0].length);
      return [{ name: JSON.parse(`"${head[1] ?? ""}"`) as string, arguments: this.flush() }];
    }
    const released = this.flush();
    return released ? [{ arguments: released }] : [];
  }

  /** The arguments not yet released, without the wrapper's closing brace. */
  finish(): ToolCallDelta[] {
    if (!this.named) return [];
    const rest = this.buffer.replace(/\s*\}\s*$/, "");
    this.buffer = "";
    return rest ? [{ arguments: rest }] : [];
  }

  private flush(): string {
    const keep = /\s*\}?\s*$/.exec(this.buffer)?.[0].length ?? 0;
    const released = this.buffer.slice(0, this.buffer.length - keep);
    this.buffer = this.buffer.slice(this.buffer.length - keep);
    return released;
  }
}
