// A real headless browser (Debian's chromium, driven by playwright-core) calls
// the member over gRPC-Web from a page on another origin (CORS per --cors).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { startMember, type Member } from "./harness/server.ts";
import { CHROMIUM_BIN, requireTool } from "./harness/tools.ts";
import { grpcClient, enc, dec } from "./harness/grpc-client.ts";

const haveChromium = requireTool(CHROMIUM_BIN);
let member: Member;
let browser: Browser | undefined;
let pageServer: ReturnType<typeof Bun.serve> | undefined;
let bundleDir: string;

beforeAll(async () => {
  if (!haveChromium) return;
  member = await startMember();
  bundleDir = mkdtempSync(join(tmpdir(), "tsetcd-page-"));
  const built = await Bun.build({ entrypoints: [join(import.meta.dir, "browser", "page.ts")], outdir: bundleDir, target: "browser" });
  if (!built.success) throw new Error(built.logs.map(String).join("\n"));
  const script = await Bun.file(join(bundleDir, "page.js")).text();
  pageServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) =>
      new URL(req.url).pathname === "/page.js"
        ? new Response(script, { headers: { "content-type": "text/javascript" } })
        : new Response(`<!doctype html><p id="out">pending</p><script type="module" src="/page.js"></script>`, { headers: { "content-type": "text/html" } }),
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM_BIN,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  pageServer?.stop(true);
  await member?.stop();
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

test.skipIf(!haveChromium)(
  "a browser page does a gRPC-Web Put and Range",
  async () => {
    const page = await browser!.newPage();
    await page.goto(`http://127.0.0.1:${pageServer!.port}/?member=${encodeURIComponent(member.clientUrl)}`);
    await page.waitForFunction(() => document.getElementById("out")?.textContent !== "pending", undefined, { timeout: 15_000 });
    const text = (await page.textContent("#out")) ?? "";
    expect(text.startsWith("ERROR")).toBe(false);
    const out = JSON.parse(text);
    expect(out.value).toBe("hello from chromium");
    expect(out.modRevision).toBe(out.putRevision);
    // The browser's write is the same data every gRPC client sees.
    const r = await grpcClient(member.clientUrl).kv.range({ key: enc("browser/key") });
    expect(dec(r.kvs[0].value)).toBe("hello from chromium");
  },
  60_000,
);
