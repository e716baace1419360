// Shared pieces of the interop harness: a virtual clock (Date.now is
// replaced so that @waku/sds runs in the same virtual time as the Rust
// peers), the Rust peer process wrapper, the JS node wrapper, assertions.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { Message, MessageChannel, MessageChannelEvent } from "@waku/sds";

// ------------------------------------------------------------------ clock

export const T0 = 1_700_000_000_000;
let virtualNow = T0;
Date.now = () => virtualNow;
export const clock = {
  get now() {
    return virtualNow;
  },
  set(t) {
    if (t < virtualNow) throw new Error(`clock moving back: ${t} < ${virtualNow}`);
    virtualNow = t;
  },
  advance(ms) {
    virtualNow += ms;
    return virtualNow;
  }
};

// -------------------------------------------------------------- utilities

export const CHANNEL = "interop";
export const hex = (b) => Buffer.from(b).toString("hex");
export const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));
export const sha256 = (b) => createHash("sha256").update(b).digest();
/** Stand-in for the Waku message hash: the transport's retrieval hint. */
export const hintOf = (bytes) => new Uint8Array(sha256(bytes));
export const messageIdOf = (payload) => hex(sha256(payload));

/** A small seeded generator (mulberry32) for payloads, loss and timing. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    bytes: (n) => new Uint8Array(Array.from({ length: n }, () => Math.floor(next() * 256)))
  };
}

// ------------------------------------------------------------- assertions

export class AssertionError extends Error {}

export function check(cond, what, detail) {
  if (!cond) {
    const d = detail === undefined ? "" : `: ${typeof detail === "string" ? detail : JSON.stringify(detail, replacer)}`;
    throw new AssertionError(`${what}${d}`);
  }
}

export function eq(actual, expected, what) {
  const a = JSON.stringify(actual, replacer);
  const e = JSON.stringify(expected, replacer);
  if (a !== e) throw new AssertionError(`${what}: expected ${e}, got ${a}`);
}

function replacer(_k, v) {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array) return hex(v);
  return v;
}

/** Deviations of @waku/sds that a scenario tolerated, printed at the end. */
export const deviations = [];
export function deviation(scenario, text) {
  deviations.push(`[${scenario}] ${text}`);
}

// --------------------------------------------------------------- Rust peer

/** An `sds peer` child process driven through its JSON-lines protocol. */
export class RustPeer {
  constructor(bin, id, configToml = "") {
    this.id = id;
    this.dir = mkdtempSync(join(tmpdir(), "sds-interop-"));
    const cfg = join(this.dir, "peer.toml");
    writeFileSync(cfg, configToml);
    this.child = spawn(bin, ["peer", "--participant-id", id, "--dialect", "spec", "--config", cfg], {
      stdio: ["pipe", "pipe", "inherit"]
    });
    this.lines = createInterface({ input: this.child.stdout });
    this.pending = [];
    this.current = [];
    this.log = []; // every output line, with the time of the op
    this.lines.on("line", (l) => {
      const v = JSON.parse(l);
      if (v.type === "done") {
        const out = this.current;
        this.current = [];
        this.pending.shift()(out);
      } else {
        this.current.push(v);
      }
    });
    this.child.on("exit", (code) => {
      for (const p of this.pending) p(null);
      this.pending = [];
      if (code !== 0 && code !== null && !this.closing) {
        console.error(`sds peer ${id} exited with ${code}`);
      }
    });
  }

  /** Runs one op; returns its output lines. Errors from the peer throw. */
  async op(obj, { allowError = false } = {}) {
    const p = new Promise((resolve) => this.pending.push(resolve));
    this.child.stdin.write(JSON.stringify(obj) + "\n");
    const out = await p;
    if (out === null) throw new Error(`sds peer ${this.id} died during ${JSON.stringify(obj).slice(0, 200)}`);
    for (const v of out) this.log.push({ at: obj.now_ms, ...v });
    const err = out.find((v) => v.type === "error");
    if (err && !allowError) throw new AssertionError(`${this.id}: ${err.error} (op ${obj.op})`);
    return out;
  }

  send(payload, messageId = messageIdOf(payload)) {
    return this.op({ op: "send", now_ms: clock.now, channel: CHANNEL, message_id: messageId, content_hex: hex(payload) });
  }
  sendEphemeral(payload) {
    return this.op({ op: "send_ephemeral", now_ms: clock.now, channel: CHANNEL, content_hex: hex(payload) });
  }
  receive(bytes, hint) {
    const o = { op: "receive", now_ms: clock.now, hex: hex(bytes) };
    if (hint) o.retrieval_hint_hex = hex(hint);
    return this.op(o);
  }
  tick() {
    return this.op({ op: "tick", now_ms: clock.now });
  }
  markMet(ids) {
    return this.op({ op: "mark_met", now_ms: clock.now, channel: CHANNEL, message_ids: ids });
  }
  setHint(messageId, hint) {
    return this.op({ op: "set_hint", channel: CHANNEL, message_id: messageId, retrieval_hint_hex: hex(hint) });
  }
  async state() {
    const out = await this.op({ op: "state", channel: CHANNEL });
    return out[0];
  }
  async repairTiming(participantId, senderId, messageId) {
    const out = await this.op({ op: "repair_timing", participant_id: participantId, sender_id: senderId, message_id: messageId });
    return out[0];
  }

  close() {
    this.closing = true;
    this.child.stdin.end();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const ofType = (out, t) => out.filter((v) => v.type === t);
export const broadcasts = (out, reason) => out.filter((v) => v.type === "broadcast" && (!reason || v.reason === reason));
export function oneBroadcast(out, reason) {
  const b = broadcasts(out, reason);
  eq(b.length, 1, `one ${reason} broadcast`);
  return { ...b[0], bytes: unhex(b[0].hex) };
}

// ----------------------------------------------------------------- JS node

const ALL_EVENTS = [
  ...Object.values(MessageChannelEvent),
  // @waku/sds 0.0.8 dispatches these two under their enum *key* names
  // instead of their values (js-sds.md §8.5).
  "RepairRequestQueued",
  "RepairResponseQueued",
  "taskError"
];

/** A @waku/sds MessageChannel with the harness as its transport. */
export class JsNode {
  constructor(id, options = {}) {
    this.id = id;
    this.ch = new MessageChannel(CHANNEL, id, options);
    this.events = [];
    for (const t of ALL_EVENTS) {
      this.ch.addEventListener(t, (e) => this.events.push({ type: t, detail: e.detail, at: clock.now }));
    }
    this.sent = new Map(); // message id -> payload (for resends)
  }

  /** Events of a type recorded since index `from`. */
  ev(type, from = 0) {
    return this.events.slice(from).filter((e) => e.type === type);
  }
  mark() {
    return this.events.length;
  }

  /** Sends a content message; returns {id, bytes, hint, message}. */
  async send(payload) {
    let bytes = null;
    let message = null;
    this.ch.pushOutgoingMessage(payload, async (m) => {
      message = m;
      bytes = m.encode();
      return { success: true, retrievalHint: hintOf(bytes) };
    });
    await this.ch.processTasks();
    check(bytes, `${this.id}: send callback not called`);
    this.sent.set(message.messageId, payload);
    return { id: message.messageId, bytes, hint: hintOf(bytes), message };
  }

  async sendEphemeral(payload) {
    let bytes = null;
    await this.ch.pushOutgoingEphemeralMessage(payload, async (m) => {
      bytes = m.encode();
      return true;
    });
    await this.ch.processTasks();
    return bytes;
  }

  /** Receives bytes; returns the decoded message (or undefined). */
  async receive(bytes, hint) {
    const m = Message.decode(bytes);
    if (!m) return undefined;
    this.ch.pushIncomingMessage(m, hint);
    await this.ch.processTasks();
    return m;
  }

  /** A sync message's bytes, or null when @waku/sds declines to send one. */
  async sync() {
    let bytes = null;
    await this.ch.pushOutgoingSyncMessage(async (m) => {
      bytes = m.encode();
      return true;
    });
    return bytes;
  }

  /** Resends unacknowledged and possibly acknowledged messages (what
   * ReliableChannel's retry manager does): the same stored message again. */
  async resendAll() {
    const { unacknowledged, possiblyAcknowledged } = this.ch.sweepOutgoingBuffer();
    const out = [];
    for (const m of [...unacknowledged, ...possiblyAcknowledged]) {
      const payload = this.sent.get(m.messageId);
      if (!payload) continue;
      this.ch.pushOutgoingMessage(payload, async (mm) => {
        const bytes = mm.encode();
        out.push({ id: mm.messageId, bytes, hint: hintOf(bytes) });
        return { success: true, retrievalHint: hintOf(bytes) };
      });
    }
    await this.ch.processTasks();
    return out;
  }

  /** Due SDS-R responses, encoded. */
  async repairResponses() {
    const out = [];
    await this.ch.sweepRepairIncomingBuffer(async (m) => {
      out.push({ id: m.messageId, bytes: m.encode() });
      return true;
    });
    return out;
  }

  delivered(from = 0) {
    return this.ev(MessageChannelEvent.InMessageDelivered, from).map((e) => e.detail);
  }
}

export { Message, MessageChannel, MessageChannelEvent };
