// Watch beyond etcdctl's bidi stream, against the compiled binary:
// - --experimental-watch-progress-notify-interval (flag, ETCD_ variable, YAML) reaches the Watch
//   service: an idle progress_notify watcher gets a progress notification within the interval;
// - tsetcdpb.WatchStream/Watch, the server-streaming watch for browsers, over connect-web's
//   Connect and gRPC-Web transports: created, events in order, canceled by aborting (the
//   server drops the watcher), a refused create ends the call;
// - POST /v3/watch, etcd 3.4's grpc-gateway stream, byte for byte against real etcd (ids
//   masked), and its watcher goes away when the client does.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport as createConnectTransportNode, createGrpcTransport } from "@connectrpc/connect-node";
import http2 from "node:http2";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { KV, Watch, type WatchRequest, WatchRequestSchema, type WatchResponse, type WatchCreateRequestSchema } from "../src/gen/etcdserverpb/rpc_pb.js";
import { WatchStream } from "../src/gen/tsetcdpb/watch_pb.js";
import { dec, enc } from "./harness/grpc-client.ts";
import { sideBySide, startMember, type Member } from "./harness/server.ts";
import { ETCD_BIN, requireTools, SUBJECT_BIN } from "./harness/tools.ts";
import { freePorts } from "./harness/ports.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const STEP_TIMEOUT_MS = 5_000;

/** Resolves with `p`, or rejects after `ms` (every wait here is bounded). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A bidi Watch stream we can push requests into. */
function bidiWatch(transport: Transport) {
  const client = createClient(Watch, transport);
  const pending: WatchRequest[] = [];
  let wake: (() => void) | undefined;
  const ac = new AbortController();
  const reqs = (async function* () {
    while (!ac.signal.aborted) {
      const r = pending.shift();
      if (r) yield r;
      else await new Promise<void>((res) => (wake = res));
    }
  })();
  const responses = client.watch(reqs, { signal: ac.signal })[Symbol.asyncIterator]();
  return {
    send(r: WatchRequest) {
      pending.push(r);
      wake?.();
    },
    next: () =>
      within(
        responses.next().then((r) => r.value as WatchResponse),
        STEP_TIMEOUT_MS,
        "watch response",
      ),
    close() {
      ac.abort();
      wake?.();
    },
  };
}

async function watcherTotal(m: Member): Promise<number> {
  const text = await (await fetch(`${m.clientUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("etcd_debugging_mvcc_watcher_total "));
  return Number(line?.split(" ")[1] ?? NaN);
}

/** Polls until the server has `n` watchers (bounded). */
async function expectWatchers(m: Member, n: number, ms = STEP_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  let last = NaN;
  while (Date.now() < deadline) {
    last = await watcherTotal(m);
    if (last === n) return;
    await Bun.sleep(50);
  }
  throw new Error(`expected ${n} watchers, the server has ${last}`);
}

const ready = requireTools([SUBJECT_BIN]);

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** Options for a member started from a YAML file that sets the interval (a config file replaces every flag). */
async function yamlMember(): Promise<Parameters<typeof startMember>[0]> {
  const [client, peer] = await freePorts(2);
  const dir = mkdtempSync(join(tmpdir(), "tsetcd-progress-"));
  tempDirs.push(dir);
  const clientUrl = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const file = join(dir, "etcd.yml");
  writeFileSync(
    file,
    [
      "name: progress",
      `data-dir: ${join(dir, "data")}`,
      `listen-client-urls: ${clientUrl}`,
      `advertise-client-urls: ${clientUrl}`,
      `listen-peer-urls: ${peerUrl}`,
      `initial-advertise-peer-urls: ${peerUrl}`,
      `initial-cluster: progress=${peerUrl}`,
      "experimental-watch-progress-notify-interval: 1s",
      "",
    ].join("\n"),
  );
  return { exactArgs: true, args: ["--config-file", file], clientUrl, peerUrl, dataDir: join(dir, "data") };
}

describe.skipIf(!ready)("--experimental-watch-progress-notify-interval", () => {
  const cases: [string, () => Promise<Parameters<typeof startMember>[0]>][] = [
    ["flag", async () => ({ args: ["--experimental-watch-progress-notify-interval=1s"] })],
    ["ETCD_ variable", async () => ({ env: { ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL: "1s" } })],
    ["YAML config file", yamlMember],
  ];
  for (const [name, opts] of cases) {
    test(`${name}: an idle progress_notify watcher gets a progress notification at the current revision`, async () => {
      const m = await startMember({ name: "progress", ...(await opts()) });
      try {
        expect(m.logs()).not.toContain("not implemented");
        const transport = createGrpcTransport({ baseUrl: m.clientUrl });
        const kv = createClient(KV, transport);
        await kv.put({ key: enc("p/a"), value: enc("1") });
        await kv.put({ key: enc("other"), value: enc("2") });
        const w = bidiWatch(transport);
        const createReq = (key: string, progressNotify: boolean): WatchRequest =>
          create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { key: enc(key), progressNotify } } });
        w.send(createReq("p/", false)); // no progress_notify: never notified
        w.send(createReq("p/a", true));
        const created = [await w.next(), await w.next()];
        expect(created.map((r) => [r.watchId, r.created])).toEqual([
          [0n, true],
          [1n, true],
        ]);
        const started = Date.now();
        const progress = await w.next();
        const elapsed = Date.now() - started;
        // Interval + up to 10% jitter (1.1 s) from the watcher's creation; slack for a loaded machine.
        // The default (10 minutes) would not get here at all within the 5 s wait.
        expect(elapsed).toBeLessThan(3_000);
        expect(progress.watchId).toBe(1n);
        expect(progress.events).toEqual([]);
        expect(progress.created || progress.canceled).toBe(false);
        expect(progress.header!.revision).toBe(3n);
        // The next one too: still idle, still revision 3, still only watcher 1.
        const again = await w.next();
        expect([again.watchId, again.events.length, again.header!.revision]).toEqual([1n, 0, 3n]);
        w.close();
      } finally {
        await m.stop();
      }
    }, 30_000);
  }
});

describe.skipIf(!ready)("tsetcdpb.WatchStream/Watch (server streaming, for browsers)", () => {
  let m: Member;
  beforeAll(async () => {
    m = await startMember({ name: "sstream" });
  }, 30_000);
  afterAll(async () => {
    await m?.stop();
  });

  const transports: [string, (baseUrl: string) => Transport][] = [
    ["Connect", (baseUrl) => createConnectTransport({ baseUrl })],
    ["Connect (JSON)", (baseUrl) => createConnectTransport({ baseUrl, useBinaryFormat: false })],
    ["gRPC-Web", (baseUrl) => createGrpcWebTransport({ baseUrl })],
    ["gRPC (h2c, not for browsers: the same method on the gRPC path)", (baseUrl) => createGrpcTransport({ baseUrl })],
  ];
  for (const [name, make] of transports) {
    test(`${name}: created, then every put in order, canceled by aborting`, async () => {
      const prefix = `ss/${name}/`;
      const kv = createClient(KV, createGrpcTransport({ baseUrl: m.clientUrl }));
      const client = createClient(WatchStream, make(m.clientUrl));
      const ac = new AbortController();
      const req: MessageInitShape<typeof WatchCreateRequestSchema> = { key: enc(prefix), rangeEnd: enc(prefix.slice(0, -1) + "0"), prevKv: true };
      const it = client.watch(req, { signal: ac.signal })[Symbol.asyncIterator]();
      const next = () => within(it.next(), STEP_TIMEOUT_MS, "server-stream response");
      const first = await next();
      expect(first.done).toBe(false);
      expect(first.value!.created).toBe(true);
      expect(first.value!.canceled).toBe(false);
      const startRev = first.value!.header!.revision;
      await kv.put({ key: enc(`${prefix}a`), value: enc("1") });
      await kv.put({ key: enc("ss-outside"), value: enc("x") });
      await kv.put({ key: enc(`${prefix}b`), value: enc("2") });
      await kv.put({ key: enc(`${prefix}a`), value: enc("3") });
      await kv.deleteRange({ key: enc(`${prefix}b`) });
      const seen: string[] = [];
      const revs: bigint[] = [];
      while (seen.length < 4) {
        const r = await next();
        expect(r.done).toBe(false);
        for (const ev of r.value!.events) {
          seen.push(`${ev.type === 1 ? "DELETE" : "PUT"} ${dec(ev.kv!.key)} ${dec(ev.kv!.value)} prev=${ev.prevKv ? dec(ev.prevKv.value) : "-"}`);
          revs.push(ev.kv!.modRevision);
        }
      }
      expect(seen).toEqual([`PUT ${prefix}a 1 prev=-`, `PUT ${prefix}b 2 prev=-`, `PUT ${prefix}a 3 prev=1`, `DELETE ${prefix}b  prev=2`]);
      expect(revs).toEqual([startRev + 1n, startRev + 3n, startRev + 4n, startRev + 5n]);
      await expectWatchers(m, 1);
      ac.abort();
      await within(
        it.next().catch(() => undefined),
        STEP_TIMEOUT_MS,
        "end after abort",
      );
      await expectWatchers(m, 0);
    }, 30_000);
  }

  test("Connect over HTTP/2 (h2c, as browsers over https): aborting drops the watcher", async () => {
    const client = createClient(WatchStream, createConnectTransportNode({ baseUrl: m.clientUrl, httpVersion: "2" }));
    const ac = new AbortController();
    const it = client.watch({ key: enc("h2/"), rangeEnd: enc("h20") }, { signal: ac.signal })[Symbol.asyncIterator]();
    const first = await within(it.next(), STEP_TIMEOUT_MS, "h2 created");
    expect(first.value!.created).toBe(true);
    await expectWatchers(m, 1);
    ac.abort();
    await within(
      it.next().catch(() => undefined),
      STEP_TIMEOUT_MS,
      "end after abort",
    );
    await expectWatchers(m, 0);
  }, 30_000);

  test("POST /v3/watch over HTTP/2 (h2c): closing the stream drops the watcher", async () => {
    const session = http2.connect(m.clientUrl);
    try {
      const req = session.request({ ":method": "POST", ":path": "/v3/watch", "content-type": "application/json" });
      req.end(`{"create_request":{"key":"${Buffer.from("h2gw").toString("base64")}"}}`);
      let text = "";
      req.on("data", (c: Buffer) => (text += c.toString()));
      const deadline = Date.now() + STEP_TIMEOUT_MS;
      while (!text.includes("\n") && Date.now() < deadline) await Bun.sleep(20);
      expect(text).toContain('"created":true');
      await expectWatchers(m, 1);
      req.close(http2.constants.NGHTTP2_CANCEL);
      await expectWatchers(m, 0);
    } finally {
      session.destroy();
    }
  }, 30_000);

  test("a refused create (empty range) is one created+canceled answer, then the call ends", async () => {
    const client = createClient(WatchStream, createGrpcWebTransport({ baseUrl: m.clientUrl }));
    const got: WatchResponse[] = [];
    await within(
      (async () => {
        for await (const r of client.watch({ key: enc("b"), rangeEnd: enc("a") })) got.push(r);
      })(),
      STEP_TIMEOUT_MS,
      "refused watch",
    );
    expect(got.length).toBe(1);
    expect([got[0].created, got[0].canceled, got[0].cancelReason, got[0].watchId]).toEqual([true, true, "mvcc: watcher range is empty", -1n]);
    await expectWatchers(m, 0);
  }, 30_000);

  test("a start revision replays history, then live events follow", async () => {
    const kv = createClient(KV, createGrpcTransport({ baseUrl: m.clientUrl }));
    const p1 = await kv.put({ key: enc("replay"), value: enc("old") });
    const ac = new AbortController();
    const it = createClient(WatchStream, createConnectTransport({ baseUrl: m.clientUrl }))
      .watch({ key: enc("replay"), startRevision: p1.header!.revision }, { signal: ac.signal })
      [Symbol.asyncIterator]();
    const next = async () => (await within(it.next(), STEP_TIMEOUT_MS, "replay response")).value as WatchResponse;
    expect((await next()).created).toBe(true);
    expect((await next()).events.map((e) => dec(e.kv!.value))).toEqual(["old"]);
    await kv.put({ key: enc("replay"), value: enc("new") });
    expect((await next()).events.map((e) => dec(e.kv!.value))).toEqual(["new"]);
    ac.abort();
    await expectWatchers(m, 0);
  }, 30_000);
});

// ---- POST /v3/watch -------------------------------------------------------------------------

const b64 = (s: string) => Buffer.from(s).toString("base64");
const mask = (s: string) => s.replace(/"(cluster_id|member_id)":"\d+"/g, '"$1":"<id>"');

/** A POST /v3/watch whose body text is collected as it streams; abort() ends it. */
function gatewayWatch(baseUrl: string, path: string, body: string) {
  const ac = new AbortController();
  let text = "";
  const res = fetch(`${baseUrl}${path}`, { method: "POST", body, signal: ac.signal });
  const done = (async () => {
    const r = await res;
    const reader = r.body!.getReader();
    const d = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        text += d.decode(value, { stream: true });
      }
    } catch {
      // aborted
    }
  })();
  return {
    response: res,
    get text() {
      return text;
    },
    /** Waits (bounded) until the body holds `n` lines. */
    async lines(n: number): Promise<string[]> {
      const deadline = Date.now() + STEP_TIMEOUT_MS;
      while (text.split("\n").length - 1 < n && Date.now() < deadline) await Bun.sleep(20);
      return text.split("\n").slice(0, -1);
    },
    async abort() {
      ac.abort();
      await within(
        done.catch(() => {}),
        STEP_TIMEOUT_MS,
        "gateway watch end",
      );
    },
  };
}

describe.skipIf(!requireTools([SUBJECT_BIN, ETCD_BIN]))(`POST /v3/watch: ${SUBJECT_BIN} vs ${ETCD_BIN}`, () => {
  const pair = sideBySide("gw");

  /** The same scenario on one server: the lines the watch printed and the response headers that matter. */
  async function scenario(m: Member): Promise<{ lines: string[]; contentType: string | null; meta: string | null; status: number }[]> {
    const put = (k: string, v: string) => fetch(`${m.clientUrl}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: b64(k), value: b64(v) }) });
    const del = (k: string) => fetch(`${m.clientUrl}/v3/kv/deleterange`, { method: "POST", body: JSON.stringify({ key: b64(k) }) });
    const out = [];
    // Live: created, two puts and a delete; a second stream (one watcher per stream: the order
    // of two watchers' events of one revision is not defined) with prev_kv, NOPUT and an unknown field.
    const live = gatewayWatch(m.clientUrl, "/v3/watch", `{"create_request":{"key":"${b64("foo")}"}}`);
    const live2 = gatewayWatch(
      m.clientUrl,
      "/v3/watch",
      `\n {"create_request":{"key":"${b64("foo")}","prev_kv":true,"filters":["NOPUT"],"unknown_field":1}}\n`,
    );
    const first = await within(live.response, STEP_TIMEOUT_MS, "live watch headers");
    await live.lines(1);
    await live2.lines(1);
    await put("foo", "bar");
    await put("foo", "baz");
    await del("foo");
    for (const [w, n] of [
      [live, 4],
      [live2, 2],
    ] as const) {
      const lines = await w.lines(n);
      await w.abort();
      out.push({ lines, contentType: first.headers.get("content-type"), meta: first.headers.get("grpc-metadata-content-type"), status: first.status });
    }
    // Replays, a refused create, a progress request, a cancel, and a bad request after a good one (requests end, stream stays).
    for (const [path, body, n] of [
      [
        "/v3/watch",
        `{"create_request":{"key":"${b64("foo")}","start_revision":"2"}}{"create_request":{"key":"YQ==","range_end":"YQ=="}}  {"progress_request":{}}`,
        4,
      ],
      ["/v3beta/watch", `{"create_request":{"key":"${b64("foo")}"}}{"cancel_request":{"watch_id":"0"}}`, 2],
      ["/v3/watch", `{"create_request":{"key":"${b64("foo")}"}} xx {"create_request":{"key":"${b64("foo")}"}}`, 1],
    ] as const) {
      const w = gatewayWatch(m.clientUrl, path, body);
      const r = await within(w.response, STEP_TIMEOUT_MS, `${path} headers`);
      const lines = await w.lines(n);
      await Bun.sleep(200); // nothing more may come
      out.push({ lines: [...lines, ...w.text.split("\n").slice(lines.length + 1)], contentType: r.headers.get("content-type"), meta: null, status: r.status });
      await w.abort();
    }
    // A first request that is not JSON: a plain grpc-gateway error.
    const bad = await fetch(`${m.clientUrl}/v3/watch`, { method: "POST", body: "xx" });
    out.push({ lines: [await bad.text()], contentType: bad.headers.get("content-type"), meta: null, status: bad.status });
    // /v3alpha/ has no watch in etcd 3.4.
    const alpha = await fetch(`${m.clientUrl}/v3alpha/watch`, { method: "POST", body: `{"create_request":{"key":"${b64("foo")}"}}` });
    await alpha.text();
    out.push({ lines: [], contentType: null, meta: null, status: alpha.status });
    return out.map((o) => ({ ...o, lines: o.lines.map(mask) }));
  }

  test("the same stream of JSON lines as etcd 3.4", async () => {
    const [a, b] = [await scenario(pair.ours), await scenario(pair.etcd)];
    expect(a).toEqual(b);
    // And what that is, so a change in both is noticed too.
    expect(a[0].lines[0]).toBe('{"result":{"header":{"cluster_id":"<id>","member_id":"<id>","revision":"1","raft_term":"2"},"created":true}}');
    expect(a[1].lines[1]).toBe(
      '{"result":{"header":{"cluster_id":"<id>","member_id":"<id>","revision":"4","raft_term":"2"},"events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"4"},"prev_kv":{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}}]}}',
    );
  }, 60_000);

  test("the watcher goes away with the client", async () => {
    await expectWatchers(pair.ours, 0);
    const w = gatewayWatch(pair.ours.clientUrl, "/v3/watch", `{"create_request":{"key":"${b64("gone")}"}}`);
    await w.lines(1);
    await expectWatchers(pair.ours, 1);
    await w.abort();
    await expectWatchers(pair.ours, 0);
  }, 30_000);
});

describe.skipIf(!ready)("stopping the member with watches open", () => {
  test("watch streams end at once with Unavailable; POST /v3/watch ends with etcd's error object; the stop does not wait for them", async () => {
    const m = await startMember({ name: "stopping" });
    const gw = gatewayWatch(m.clientUrl, "/v3/watch", `{"create_request":{"key":"${b64("s")}"}}`);
    await gw.lines(1);
    const w = bidiWatch(createGrpcTransport({ baseUrl: m.clientUrl }));
    w.send(create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { key: enc("s") } } }));
    expect((await w.next()).created).toBe(true);
    const ended = w.next().then(
      () => "no error",
      (err: unknown) => String((err as Error).message),
    );
    const started = Date.now();
    expect(await m.stop()).toBe(0);
    // The drain timeout is 5 s: a stop that waited for the streams would take longer.
    expect(Date.now() - started).toBeLessThan(4_500);
    expect(await within(ended, STEP_TIMEOUT_MS, "bidi end")).toContain("transport is closing");
    await gw.abort();
    // etcd 3.4 (grpc-gateway) ends the stream with this object, no newline after it.
    expect(gw.text.split("\n").slice(1).join("\n")).toBe(
      '{"error":{"grpc_code":14,"http_code":503,"message":"transport is closing","http_status":"Service Unavailable"}}',
    );
  }, 30_000);
});
