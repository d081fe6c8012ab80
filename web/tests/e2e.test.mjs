// End-to-end test of the static web calculator in headless Chromium.
//
// Serves web/dist on 127.0.0.1, drives Debian's chromium with playwright-core,
// and checks the page against `chimera-plan --json` (the same planner, so the
// numbers must be identical). Screenshots and timings go to $ARTIFACTS
// (default web/test-artifacts/).
//
// Environment: CHIMERA_PLAN (the CLI binary), CHROMIUM (browser executable).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const dist = path.resolve(here, "../dist");
const artifacts = process.env.ARTIFACTS || path.resolve(here, "../test-artifacts");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, "target");
const cli = process.env.CHIMERA_PLAN || path.join(targetDir, "release", "chimera-plan");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".svg": "image/svg+xml",
};

let server;
let base;
let browser;

function serve() {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      const url = new URL(req.url, "http://localhost");
      const rel = decodeURIComponent(url.pathname === "/" ? "/index.html" : url.pathname);
      const file = path.resolve(dist, "." + rel);
      if (!file.startsWith(dist + path.sep) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
        res.writeHead(404).end("not found");
        return;
      }
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
      fs.createReadStream(file).pipe(res);
    });
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

function planJson(args) {
  return JSON.parse(execFileSync(cli, [...args, "--json"], { encoding: "utf8" }));
}

async function openPage(hash = "", viewport = { width: 1200, height: 900 }) {
  const page = await browser.newPage({ viewport });
  const outside = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith("data:") && !r.url().startsWith("blob:")) outside.push(r.url());
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/" + hash);
  await page.waitForSelector('#results[data-ready="true"]', { timeout: 15000 });
  page.outside = outside;
  page.errors = errors;
  return page;
}

async function pageLatencies(page) {
  return page.$$eval("#predictions tbody tr", (rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.backend, Number(r.querySelector("[data-latency-ms]").dataset.latencyMs)])),
  );
}

async function settle(page) {
  // Recompute is synchronous on input; one animation frame lets layout finish.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
}

before(async () => {
  assert.ok(fs.existsSync(path.join(dist, "index.html")), "build the site first: scripts/build-web.sh");
  assert.ok(fs.existsSync(cli), `chimera-plan not found at ${cli} (set CHIMERA_PLAN)`);
  fs.mkdirSync(artifacts, { recursive: true });
  server = await serve();
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  server?.close();
});

test("the page predicts exactly what chimera-plan --json predicts", async () => {
  const page = await openPage();
  await page.fill("#layers", "16");
  await page.fill("#d_model", "512");
  await settle(page);
  const expected = planJson(["--layers", "16", "--d-model", "512"]);
  const onPage = await pageLatencies(page);
  const fromCli = Object.fromEntries(expected.predictions.map((p) => [p.backend, p.latency_ms]));
  assert.deepEqual(onPage, fromCli);
  assert.ok(Object.keys(onPage).length >= 1);
  // The page says which machine the profile describes, and how far to trust each number.
  const machine = await page.textContent("#machine");
  for (const m of expected.machines) assert.ok(machine.includes(m), `${machine} lacks ${m}`);
  const labels = await page.$$eval("#predictions tbody [data-confidence]", (cells) => cells.map((c) => c.dataset.confidence));
  assert.deepEqual(labels, expected.predictions.map((p) => p.confidence));
  // The same for the committed profile file, selected from the shipped list.
  await page.selectOption("#profile", "shipped:default.json");
  await settle(page);
  const withFile = planJson(["--layers", "16", "--d-model", "512", "--profile", path.join(root, "data/profiles/default.json")]);
  assert.deepEqual(await pageLatencies(page), Object.fromEntries(withFile.predictions.map((p) => [p.backend, p.latency_ms])));
  const alternatives = await page.$$eval("#alternatives tbody tr", (rows) => rows.length);
  assert.equal(alternatives, Math.min(10, expected.recommendations.candidates.length));
  assert.ok(await page.$("#depth-chart svg"), "depth chart drawn");
  assert.ok(await page.$("#params-chart svg"), "params chart drawn");
  assert.deepEqual(page.outside, [], "every asset is local");
  assert.deepEqual(page.errors, []);
  await page.screenshot({ path: path.join(artifacts, "calculator.png"), fullPage: true });
  await page.close();
});

test("decode and end-to-end match chimera-plan --json", async () => {
  const page = await openPage();
  await page.fill("#layers", "12");
  await page.fill("#d_model", "768");
  await page.selectOption("#mode", "decode");
  await page.fill("#context", "1024");
  await page.fill("#output", "200");
  await settle(page);
  const expected = planJson(["--layers", "12", "--d-model", "768", "--mode", "decode", "--context", "1024", "--output-tokens", "200"]);
  const onPage = await page.$$eval("#decode tbody tr", (rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.backend, Number(r.querySelector("[data-latency-ms]").dataset.latencyMs)])),
  );
  assert.ok(expected.decode, "the embedded profile has decode models");
  assert.deepEqual(onPage, Object.fromEntries(expected.decode.predictions.map((p) => [p.backend, p.latency_ms])));
  const e2e = await page.textContent("#end-to-end");
  assert.ok(e2e.includes("200 tokens"), e2e);
  const memory = await page.textContent("#memory");
  assert.ok(memory.includes("KV cache 72.0 MiB"), memory);
  const caption = await page.textContent("#alternatives caption");
  assert.ok(caption.includes("end-to-end time (prefill + 200 tokens)"), caption);
  assert.ok(!/NaN|undefined/.test(await page.textContent("#results")));
  // The link keeps the generation fields.
  const again = await openPage(new URL(page.url()).hash);
  assert.equal(await again.inputValue("#mode"), "decode");
  assert.equal(await again.inputValue("#context"), "1024");
  assert.equal(await again.inputValue("#output"), "200");
  await page.screenshot({ path: path.join(artifacts, "calculator-decode.png"), fullPage: true });
  assert.deepEqual(page.errors, []);
  await again.close();
  await page.close();
});

const LLAMA_CONFIG = JSON.stringify({
  architectures: ["LlamaForCausalLM"], attention_bias: false, head_dim: 64, hidden_act: "silu",
  hidden_size: 2048, intermediate_size: 8192, max_position_embeddings: 131072, mlp_bias: false,
  model_type: "llama", num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8,
  rms_norm_eps: 1e-5, rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: "bfloat16",
  vocab_size: 128256, sliding_window: 4096,
});

test("a pasted Llama config predicts what chimera-plan --config predicts, and the link keeps it", async () => {
  const page = await openPage();
  await page.selectOption("#mode", "decode");
  await page.fill("#context", "2048");
  await page.fill("#config-text", LLAMA_CONFIG);
  await page.click("#config-use");
  await page.check("#vary_kv");
  await settle(page);
  const dir = fs.mkdtempSync(path.join(artifacts, "config-"));
  const file = path.join(dir, "config.json");
  fs.writeFileSync(file, LLAMA_CONFIG);
  const expected = planJson(["--config", file, "--mode", "decode", "--context", "2048", "--vary-kv-heads"]);
  assert.equal(expected.params.total, 1235814400);
  assert.equal(await page.inputValue("#kv_heads"), "8");
  assert.equal(await page.inputValue("#mlp"), "gated");
  const onPage = await page.$$eval("#decode tbody tr", (rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.backend, Number(r.querySelector("[data-latency-ms]").dataset.latencyMs)])),
  );
  assert.deepEqual(onPage, Object.fromEntries(expected.decode.predictions.map((p) => [p.backend, p.latency_ms])));
  assert.deepEqual(await pageLatencies(page), Object.fromEntries(expected.predictions.map((p) => [p.backend, p.latency_ms])));
  // What the config could not map is shown, never dropped.
  const warnings = await page.textContent("#config-warnings");
  assert.ok(warnings.includes("sliding_window"), warnings);
  assert.ok((await page.textContent("#axes")).includes("kv heads"), await page.textContent("#axes"));
  assert.ok((await page.textContent("#summary")).includes("1.24B"), await page.textContent("#summary"));
  // A contradictory config names its key next to the box.
  await page.fill("#config-text", LLAMA_CONFIG.replace('"num_key_value_heads":8', '"num_key_value_heads":5'));
  await page.click("#config-use");
  assert.ok((await page.textContent("#config-error")).includes("num_key_value_heads"), await page.textContent("#config-error"));
  // A preset fills the fields; the shared link keeps the architecture.
  await page.selectOption("#preset", "qwen2.5-0.5b");
  await settle(page);
  const again = await openPage(new URL(page.url()).hash);
  assert.equal(await again.inputValue("#kv_heads"), "2");
  assert.equal(await again.inputValue("#bias"), "qkv");
  assert.equal(await again.inputValue("#norm"), "rmsnorm");
  assert.ok((await again.textContent("#summary")).includes("494.0M"), await again.textContent("#summary"));
  assert.deepEqual(page.errors, []);
  await page.screenshot({ path: path.join(artifacts, "calculator-llama.png"), fullPage: true });
  await again.close();
  await page.close();
});

test("load and recompute times (reported, not asserted)", async () => {
  const loads = [];
  for (let i = 0; i < 5; i++) {
    const page = await openPage();
    loads.push(await page.evaluate(() => window.chimeraTimings.firstResultMs));
    await page.close();
  }
  const page = await openPage();
  for (const layers of [2, 4, 8, 12, 16, 24, 32, 48, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25]) {
    await page.fill("#layers", String(layers));
  }
  await settle(page);
  const recompute = await page.evaluate(() => window.chimeraTimings.recomputeMs);
  await page.close();
  const sorted = (xs) => [...xs].sort((a, b) => a - b);
  const median = (xs) => sorted(xs)[Math.floor(xs.length / 2)];
  const report = {
    first_result_ms: { median: median(loads), max: Math.max(...loads), runs: loads },
    recompute_ms: { median: median(recompute), max: Math.max(...recompute), runs: recompute.length },
  };
  fs.writeFileSync(path.join(artifacts, "timings.json"), JSON.stringify(report, null, 2));
  console.log(`# timings: ${JSON.stringify(report)}`);
  assert.ok(loads.every((t) => Number.isFinite(t) && t > 0));
  assert.equal(recompute.length, 20);
});

test("bad input shows a message next to the field, never NaN", async () => {
  const page = await openPage();
  await page.fill("#layers", "abc");
  await settle(page);
  assert.match(await page.textContent("#layers-error"), /whole number/);
  await page.fill("#layers", "4");
  await page.fill("#heads", "7");
  await settle(page);
  assert.match(await page.textContent("#d_model-error, #heads-error"), /divisible/);
  await page.fill("#heads", "");
  await page.fill("#budget", "lots");
  await settle(page);
  assert.match(await page.textContent("#budget-error"), /number/);
  const text = await page.textContent("#results");
  assert.ok(!text.includes("NaN") && !text.includes("undefined"), text);
  await page.close();
});

test("a malformed profile is refused with a clear error", async () => {
  const page = await openPage();
  const before = await pageLatencies(page);
  await page.setInputFiles("#profile-file", {
    name: "broken.json",
    mimeType: "application/json",
    buffer: Buffer.from('{"schema_version": 1, "name": '),
  });
  await page.waitForFunction(() => document.getElementById("profile-error").textContent.length > 0);
  assert.match(await page.textContent("#profile-error"), /broken\.json: profile is not valid JSON/);
  assert.deepEqual(await pageLatencies(page), before, "the page keeps working with the previous profile");
  await page.setInputFiles("#profile-file", {
    name: "old.json",
    mimeType: "application/json",
    buffer: Buffer.from('{"schema_version": 99}'),
  });
  await page.waitForFunction(() => document.getElementById("profile-error").textContent.includes("old.json"));
  assert.match(await page.textContent("#profile-error"), /schema version 99 is not supported/);
  await page.close();
});

test("a user's profile is used, and its text is never run as HTML", async () => {
  const profile = JSON.parse(fs.readFileSync(path.join(root, "data/profiles/default.json"), "utf8"));
  profile.name = '<img src=x onerror="window.__pwned = 1">';
  const page = await openPage();
  await page.setInputFiles("#profile-file", {
    name: "mine.json",
    mimeType: "application/json",
    buffer: Buffer.from(JSON.stringify(profile)),
  });
  await page.waitForFunction(() => document.getElementById("profile").value === "user:mine.json");
  await settle(page);
  assert.match(await page.textContent("#summary"), /<img src=x/);
  assert.equal(await page.$("#results img"), null);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await page.close();
});

test("a calibrated profile says which session it was put on, as chimera-plan does", async () => {
  const profile = JSON.parse(fs.readFileSync(path.join(root, "data/profiles/default.json"), "utf8"));
  profile.backends[0].session = {
    factor: 1.25, ratio: 1.25, ratio_ci95: [1.1, 1.4], applied: true, anchors: 8,
    ratio_range: [0.9, 1.1], measured_utc: "2026-12-01T19:00:00Z", source: "anchors.jsonl (run r)",
  };
  const file = path.join(fs.mkdtempSync(path.join(artifacts, "calibrated-")), "calibrated.json");
  fs.writeFileSync(file, JSON.stringify(profile));
  const expected = planJson(["--profile", file, "--layers", "16", "--d-model", "512"]);
  assert.equal(expected.sessions.length, 1);
  const page = await openPage();
  await page.setInputFiles("#profile-file", { name: "calibrated.json", mimeType: "application/json", buffer: fs.readFileSync(file) });
  await page.waitForFunction(() => document.getElementById("profile").value === "user:calibrated.json");
  await settle(page);
  const machine = await page.textContent("#machine");
  assert.ok(machine.includes(`Calibrated to a session (bench calibrate): ${expected.sessions[0]}`), machine);
  await page.close();
});

test("a shared link restores the same design", async () => {
  const page = await openPage();
  await page.fill("#layers", "24");
  await page.fill("#d_model", "384");
  await page.fill("#budget", "25M");
  await settle(page);
  const url = page.url();
  assert.match(url, /L=24/);
  const latencies = await pageLatencies(page);
  const rows = await page.$$eval("#alternatives tbody tr", (r) => r.map((x) => x.textContent));
  await page.close();

  const again = await openPage(new URL(url).hash);
  assert.equal(await again.inputValue("#layers"), "24");
  assert.equal(await again.inputValue("#d_model"), "384");
  assert.equal(await again.inputValue("#budget"), "25M");
  assert.deepEqual(await pageLatencies(again), latencies);
  assert.deepEqual(await again.$$eval("#alternatives tbody tr", (r) => r.map((x) => x.textContent)), rows);
  await again.close();
});

test("usable at phone width", async () => {
  const page = await openPage("", { width: 390, height: 844 });
  await page.fill("#layers", "16");
  await page.fill("#d_model", "512");
  await page.selectOption("#mode", "decode");
  await settle(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `page is ${overflow}px wider than the screen`);
  // The results column does not scroll sideways: a table too wide for the
  // screen scrolls inside its own box, so nothing is clipped at the edge.
  const results = await page.$eval("#results", (r) => r.scrollWidth - r.clientWidth);
  assert.ok(results <= 1, `results are ${results}px wider than their column`);
  const boxes = await page.$$eval(".table-box", (els) =>
    els.map((b) => ({ style: getComputedStyle(b).overflowX, fits: b.getBoundingClientRect().right <= window.innerWidth + 1 })),
  );
  assert.equal(boxes.length, 3);
  for (const b of boxes) assert.deepEqual(b, { style: "auto", fits: true });
  // Every input has a label.
  const unlabelled = await page.$$eval("input, select", (els) => els.filter((e) => !document.querySelector(`label[for="${e.id}"]`)).map((e) => e.id));
  assert.deepEqual(unlabelled, []);
  await page.screenshot({ path: path.join(artifacts, "calculator-phone.png"), fullPage: true });
  await page.close();
});
