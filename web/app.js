// Chimera web calculator: a thin page over the planner compiled to WebAssembly.
// All numbers come from the wasm module (the same code as chimera-plan); this
// file reads fields, keeps the URL hash in sync, and renders with textContent
// only, so no text from a profile or the address bar is ever parsed as HTML.

import init, { Planner, duration, count, bytes, parse_count, max_profile_bytes, presets_json, read_config, max_config_bytes } from "./pkg/chimera_web.js";

const FIELDS = ["layers", "d_model", "heads", "kv_heads", "mlp", "d_ff", "norm", "positions", "head_dim", "max_positions", "head", "bias", "seq", "batch", "vocab", "mode", "context", "output", "budget", "vary_kv", "vary_mlp", "backend", "profile"];
const HASH_KEYS = { layers: "L", d_model: "d", heads: "h", kv_heads: "kv", mlp: "mlp", d_ff: "ff", norm: "norm", positions: "pos", head_dim: "dh", max_positions: "P", head: "head", bias: "bias", seq: "n", batch: "b", vocab: "V", mode: "mode", context: "c", output: "out", budget: "budget", vary_kv: "varykv", vary_mlp: "varymlp", backend: "backend", profile: "profile" };
// Select defaults (GPT-2): left out of the link.
const DEFAULTS = { mlp: "gelu", norm: "layernorm", positions: "learned", head: "tied", bias: "all", mode: "prefill", profile: "embedded" };
let presets = [];
const TOP = 10;
// As planner::Component::label prints them.
const COMPONENT_LABELS = {
  attention: "attention",
  mlp: "MLP",
  lm_head: "LM head",
  per_layer_fixed: "per-layer fixed",
  memory_traffic: "memory traffic",
  kv_cache: "KV cache",
  constant: "constant",
};

const timings = { firstResultMs: null, recomputeMs: [] };
window.chimeraTimings = timings;

let planner = null; // the active Planner
const planners = new Map(); // profile key -> Planner

const $ = (id) => document.getElementById(id);

function setError(field, message) {
  const el = $(`${field}-error`);
  if (el) el.textContent = message || "";
  const input = $(field);
  if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
}

function clearErrors() {
  for (const f of FIELDS) setError(f, "");
  $("general-error").textContent = "";
}

// Whole numbers only: "12", not "12.5", "1e3" or "-1".
function readInteger(field, { optional = false } = {}) {
  const text = $(field).value.trim();
  if (text === "") {
    if (optional) return null;
    setError(field, "required: a whole number");
    throw new Error("invalid");
  }
  if (!/^\d+$/.test(text)) {
    setError(field, "must be a whole number, e.g. 12");
    throw new Error("invalid");
  }
  const v = Number(text);
  if (!Number.isSafeInteger(v)) {
    setError(field, "is too large");
    throw new Error("invalid");
  }
  return v;
}

function readRequest() {
  let failed = false;
  const read = (f, opts) => {
    try {
      return readInteger(f, opts);
    } catch {
      failed = true;
      return null;
    }
  };
  const bias = $("bias").value;
  const request = {
    layers: read("layers"),
    d_model: read("d_model"),
    heads: read("heads", { optional: true }),
    architecture: {
      kv_heads: read("kv_heads", { optional: true }),
      head_dim: read("head_dim", { optional: true }),
      d_ff: read("d_ff", { optional: true }),
      mlp: $("mlp").value === "gated" ? "gated" : "gelu",
      norm: $("norm").value === "rmsnorm" ? "rmsnorm" : "layernorm",
      position_encoding: $("positions").value === "rope" ? "rope" : "learned",
      tie_embeddings: $("head").value !== "untied",
      qkv_bias: bias !== "none",
      dense_bias: bias === "all",
    },
    positions: read("max_positions", { optional: true }),
    vary_kv_heads: $("vary_kv").checked,
    vary_mlp_ratio: $("vary_mlp").checked,
    seq: read("seq"),
    batch: read("batch"),
    vocab: read("vocab"),
    mode: $("mode").value === "decode" ? "decode" : "prefill",
    context: read("context"),
    output_tokens: read("output", { optional: true }),
    backend: $("backend").value || null,
    budget: null,
  };
  const budgetText = $("budget").value.trim();
  if (budgetText !== "") {
    try {
      request.budget = parse_count(budgetText);
    } catch (e) {
      setError("budget", String(e.message || e));
      failed = true;
    }
  }
  return failed ? null : request;
}

// Planner errors name the field; show them next to it.
function placePlannerError(message) {
  const rules = [
    ["kv_heads", /kv_heads/],
    ["head_dim", /head_dim/],
    ["d_ff", /d_ff/],
    ["d_model", /d_model|d-model/],
    ["heads", /heads|head-size/],
    ["layers", /layers/],
    ["seq", /\bseq\b|positions/],
    ["batch", /batch/],
    ["vocab", /vocab/],
    ["budget", /budget|tolerance/],
    ["context", /context|decode model/],
    ["output", /output/],
  ];
  for (const [field, re] of rules) {
    if (re.test(message)) {
      setError(field, message);
      return;
    }
  }
  $("general-error").textContent = message;
}

function cell(row, text, attrs = {}) {
  const td = document.createElement("td");
  td.textContent = text;
  for (const [k, v] of Object.entries(attrs)) td.setAttribute(k, v);
  row.appendChild(td);
  return td;
}

function showSvg(figureId, svgText, caption) {
  const fig = $(figureId);
  fig.replaceChildren();
  if (!svgText) return;
  // Parsed as XML, never as HTML: text in it was escaped by the planner.
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") return;
  fig.appendChild(document.importNode(svg, true));
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.appendChild(cap);
}

function render(plan, charts) {
  const summary = $("summary");
  summary.replaceChildren();
  if (plan.shape && plan.params) {
    const p = document.createElement("p");
    p.textContent =
      `${count(plan.params.total)} parameters (${count(plan.params.non_embedding)} non-embedding) · ` +
      `${(plan.flops / 1e9).toFixed(1)} GFLOP per forward pass · profile: ${plan.profile}`;
    summary.appendChild(p);
    const arch = document.createElement("p");
    arch.id = "architecture";
    arch.textContent = `Architecture: ${plan.architecture}`;
    summary.appendChild(arch);
    for (const why of plan.unpriced || []) {
      const left = document.createElement("p");
      left.className = "warn";
      left.textContent = `Left out: ${why}.`;
      summary.appendChild(left);
    }
  }
  // Which machine the numbers describe: a profile of another machine predicts that machine.
  const machine = document.createElement("p");
  machine.id = "machine";
  machine.textContent = `Measured on: ${plan.machines.join("; ")}. Predictions describe that machine; run \`bench profile\` to onboard yours.`;
  // A profile put on one session's level by `bench calibrate` says which, and by how much.
  if (plan.sessions.length) machine.textContent += ` Calibrated to a session (bench calibrate): ${plan.sessions.join("; ")}.`;
  summary.appendChild(machine);

  const tbody = $("predictions").querySelector("tbody");
  tbody.replaceChildren();
  for (const pr of plan.predictions) {
    const tr = predictionRow(pr);
    cell(tr, `+${duration(pr.depth_tax_ms)}`, { class: "num" });
    markExtrapolated(cell(tr, pr.regime), pr);
    tbody.appendChild(tr);
  }
  $("predictions").hidden = plan.predictions.length === 0;

  const cross = plan.crossovers.map(
    (c) => `${c.faster_below} is faster below ~${count(c.params_total)} parameters, ${c.faster_above} above (scaling this shape's depth and width together).`,
  );
  $("crossovers").textContent = plan.best_backend
    ? `Fastest backend: ${plan.best_backend}. ${cross.join(" ")}`
    : "";

  renderDecode(plan);

  const alt = $("alternatives").querySelector("tbody");
  alt.replaceChildren();
  const rec = plan.recommendations;
  if (rec) {
    $("alternatives").querySelector("caption").textContent =
      `Same budget (${count(rec.constraints.budget_non_embedding)} non-embedding ±${Math.round(rec.constraints.tolerance * 100)}%) by ${objectiveLabel(rec.objective)}: ${rec.candidates.length} shapes, fastest ${Math.min(TOP, rec.candidates.length)}`;
    for (const c of rec.candidates.slice(0, TOP)) {
      const tr = document.createElement("tr");
      if (plan.shape && c.layers === plan.shape.layers && c.d_model === plan.shape.d_model) tr.className = "proposed";
      cell(tr, String(c.layers), { class: "num" });
      cell(tr, String(c.d_model), { class: "num" });
      cell(tr, String(c.heads), { class: "num" });
      cell(tr, String(c.kv_heads), { class: "num" });
      cell(tr, String(c.d_ff), { class: "num" });
      cell(tr, count(c.params_non_embedding), { class: "num" });
      cell(tr, c.backend);
      cell(tr, duration(c.latency_ms), { class: "num" });
      const speedup = c.within_noise ? "within noise" : `${c.speedup.toFixed(2)}×`;
      cell(tr, `${speedup}${c.extrapolated ? " (extrapolated)" : ""}`, { class: "num" });
      cell(tr, `±${Math.round(c.expected_error_pct)}%`, { class: "num" });
      alt.appendChild(tr);
    }
    const parts = [];
    for (const [label, c] of [["Best shallow-wide", rec.best_shallow_wide], ["best deep-narrow", rec.best_deep_narrow]]) {
      const versus = c && c.within_noise ? "within noise of the proposal" : c && `${c.speedup.toFixed(2)}× vs proposed`;
      if (c) parts.push(`${label}: L=${c.layers} d=${c.d_model}, ${duration(c.latency_ms)} on ${c.backend} (${versus})`);
    }
    $("verdict").textContent = parts.join("; ");
    const axes = (rec.axes || []).map((g) =>
      `${g.axis}: ${g.speedup.toFixed(2)}× (L=${g.best.layers} d=${g.best.d_model} KV=${g.best.kv_heads} d_ff=${g.best.d_ff})`);
    const most = (rec.axes || []).reduce((a, g) => (!a || g.speedup > a.speedup ? g : a), null);
    $("axes").textContent = axes.length
      ? `What each axis buys (depth and width vs the proposal, the others on top of the best depth and width): ${axes.join("; ")}.` +
        (most && most.speedup > 1 ? ` The axis that buys the most: ${most.axis}.` : "")
      : "";
  } else {
    $("verdict").textContent = "";
    $("axes").textContent = "";
  }
  $("alternatives").hidden = !rec || rec.candidates.length === 0;

  showSvg("depth-chart", charts.depth_svg, "Each line is one backend; the circle marks the proposed shape.");
  showSvg("params-chart", charts.params_svg, "Dashed lines mark where the fastest backend changes and the largest measured model; beyond it the lines extrapolate.");
}

// A table row with the backend, the latency (exact value in data-latency-ms) and its interval.
function predictionRow(pr) {
  const tr = document.createElement("tr");
  tr.dataset.backend = pr.backend;
  cell(tr, pr.backend);
  cell(tr, duration(pr.latency_ms), { "data-latency-ms": String(pr.latency_ms), class: "num" });
  cell(tr, `${duration(pr.interval_ms[0])} – ${duration(pr.interval_ms[1])}`, { class: "num" });
  cell(tr, `${pr.confidence} ±${pr.expected_error_pct.toFixed(1)}%`, { "data-confidence": pr.confidence });
  return tr;
}

function markExtrapolated(td, pr) {
  if (!pr.extrapolated) return;
  const warn = document.createElement("strong");
  warn.className = "warn";
  warn.textContent = ` extrapolated: ${pr.outside.join(", ")} outside the measured range`;
  td.appendChild(warn);
}

function objectiveLabel(o) {
  if (o.kind === "decode") return `decode latency per token at context ${o.context}`;
  if (o.kind === "end_to_end") return `end-to-end time (prefill + ${o.output} tokens)`;
  return "prefill latency";
}

function renderDecode(plan) {
  const tbody = $("decode").querySelector("tbody");
  tbody.replaceChildren();
  const d = plan.decode;
  if (d) {
    $("decode").querySelector("caption").textContent =
      `Decode: one generated token per sequence at context ${d.context} (${(d.flops / 1e9).toFixed(2)} GFLOP per step)`;
    d.predictions.forEach((pr, i) => {
      const tr = predictionRow(pr);
      cell(tr, d.tokens_per_s[i].toFixed(1), { class: "num" });
      const parts = pr.breakdown
        .filter((c) => c.ms / pr.latency_ms >= 0.005)
        .slice(0, 3)
        .map((c) => `${COMPONENT_LABELS[c.component] || c.component} ${Math.round((100 * c.ms) / pr.latency_ms)}%`);
      markExtrapolated(cell(tr, parts.join(", ")), pr);
      tbody.appendChild(tr);
    });
  }
  $("decode").hidden = !d;
  const noDecode = plan.without_decode.length
    ? `No decode model for ${plan.without_decode.join(", ")} (measure decode with bench profile). `
    : "";
  $("end-to-end").textContent = noDecode + plan.end_to_end
    .map((e) => `End to end on ${e.backend}: prefill ${duration(e.prefill_ms)} + ${e.output} tokens × ${duration(e.decode_ms_per_token)} = ${duration(e.total_ms)} (90%: ${duration(e.interval_ms[0])} – ${duration(e.interval_ms[1])}).`)
    .join(" ");
  const m = plan.memory;
  const onBackends = m ? m.backends.map((b) => `on ${b.backend} with its measured overheads: prefill ${bytes(b.prefill.total_bytes)}, decode ${bytes(b.decode.total_bytes)}`) : [];
  $("memory").textContent = m
    ? `Memory, tensors (f32): prefill ${bytes(m.prefill.total_bytes)} (weights ${bytes(m.prefill.weights_bytes)} + activations ${bytes(m.prefill.activations_bytes)}); decode at context ${m.context} ${bytes(m.decode.total_bytes)} (KV cache ${bytes(m.decode.kv_cache_bytes)}).` +
      (onBackends.length ? ` ${onBackends.join("; ")}.` : "") +
      (plan.without_memory.length ? ` No measured overheads for ${plan.without_memory.join(", ")}: tensors only.` : "")
    : "";
}

function fieldValue(f) {
  const el = $(f);
  return el.type === "checkbox" ? (el.checked ? "1" : "") : el.value.trim();
}

function writeHash() {
  const params = new URLSearchParams();
  for (const f of FIELDS) {
    const v = fieldValue(f);
    if (v !== "" && DEFAULTS[f] !== v) params.set(HASH_KEYS[f], v);
  }
  const hash = "#" + params.toString();
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const f of FIELDS) {
    const v = params.get(HASH_KEYS[f]);
    if (v === null) continue;
    const el = $(f);
    if (el.type === "checkbox") {
      el.checked = v === "1";
      continue;
    }
    if (el.tagName === "SELECT" && ![...el.options].some((o) => o.value === v)) continue;
    el.value = v;
  }
  // Selects absent from the link take their defaults.
  for (const [f, v] of Object.entries(DEFAULTS)) {
    if (params.get(HASH_KEYS[f]) === null && f !== "profile" && f !== "mode") $(f).value = v;
  }
}

// Fills the fields from a shape spec (a preset's or a config's); fields it
// leaves out are cleared to their defaults.
function applySpec(spec) {
  const set = (f, v) => { $(f).value = v === null || v === undefined ? "" : String(v); };
  set("layers", spec.layers);
  set("d_model", spec.d_model);
  set("heads", spec.heads);
  set("kv_heads", spec.kv_heads);
  set("head_dim", spec.head_dim);
  set("d_ff", spec.d_ff);
  set("max_positions", spec.positions);
  if (spec.vocab) set("vocab", spec.vocab);
  $("mlp").value = spec.mlp || "gelu";
  $("norm").value = spec.norm || "layernorm";
  $("positions").value = spec.position_encoding || "learned";
  $("head").value = spec.tie_embeddings === false ? "untied" : "tied";
  const qkv = spec.qkv_bias !== false;
  const dense = spec.dense_bias !== false;
  $("bias").value = qkv && dense ? "all" : qkv ? "qkv" : "none";
}

function useConfigText(text) {
  setError("config", "");
  $("config-warnings").replaceChildren();
  if (text.length > max_config_bytes()) {
    setError("config", `the config is ${text.length} bytes; a model config.json is a few KiB (limit ${max_config_bytes()})`);
    return;
  }
  let read;
  try {
    read = JSON.parse(read_config(text));
  } catch (e) {
    setError("config", String(e.message || e));
    return;
  }
  applySpec(read.spec);
  $("preset").value = "";
  for (const w of read.warnings) {
    const li = document.createElement("li");
    li.textContent = `warning: ${w}`;
    $("config-warnings").appendChild(li);
  }
  recompute();
}

function recompute() {
  const t0 = performance.now();
  clearErrors();
  writeHash();
  const request = readRequest();
  if (!request || !planner) return;
  let plan, charts;
  try {
    const json = JSON.stringify(request);
    plan = JSON.parse(planner.plan(json));
    charts = JSON.parse(planner.charts(json));
  } catch (e) {
    placePlannerError(String(e.message || e));
    return;
  }
  render(plan, charts);
  const t1 = performance.now();
  if (timings.firstResultMs === null) {
    timings.firstResultMs = t1; // from navigation start
  } else {
    timings.recomputeMs.push(t1 - t0);
  }
  $("status").textContent = "";
  $("results").setAttribute("aria-busy", "false");
  $("results").dataset.ready = "true";
}

function usePlanner(key) {
  planner = planners.get(key) || planners.get("embedded");
  const select = $("backend");
  const keep = select.value;
  select.replaceChildren(new Option("all in the profile", ""));
  for (const b of planner.backends()) select.appendChild(new Option(b, b));
  select.value = planner.backends().includes(keep) ? keep : "";
}

async function loadShippedProfiles() {
  // Profiles committed under data/profiles, copied next to the page by the build.
  try {
    const res = await fetch("profiles/index.json");
    if (!res.ok) return;
    const names = await res.json();
    for (const name of names) {
      const text = await (await fetch(`profiles/${encodeURIComponent(name)}`)).text();
      try {
        const p = new Planner(text);
        const key = `shipped:${name}`;
        planners.set(key, p);
        $("profile").appendChild(new Option(`${name} (${p.name()})`, key));
      } catch {
        // A shipped profile that this build cannot read is left out.
      }
    }
  } catch {
    // Opened without a server that serves profiles/: the embedded one is enough.
  }
}

async function loadUserProfile(file) {
  setError("profile", "");
  if (file.size > max_profile_bytes()) {
    setError("profile", `${file.name} is ${(file.size / 1048576).toFixed(1)} MiB; profiles are at most ${(max_profile_bytes() / 1048576).toFixed(0)} MiB`);
    return;
  }
  const text = await file.text();
  let p;
  try {
    p = new Planner(text);
  } catch (e) {
    setError("profile", `${file.name}: ${e.message || e}`);
    return;
  }
  const key = `user:${file.name}`;
  planners.set(key, p);
  let option = [...$("profile").options].find((o) => o.value === key);
  if (!option) {
    option = new Option(`${file.name} (yours: ${p.name()})`, key);
    $("profile").appendChild(option);
  }
  $("profile").value = key;
  usePlanner(key);
  recompute();
}

async function main() {
  await init();
  planners.set("embedded", Planner.embedded());
  presets = JSON.parse(presets_json());
  for (const p of presets) $("preset").appendChild(new Option(`${p.name} (${count(p.published_params)})`, p.name));
  await loadShippedProfiles();
  readHash();
  usePlanner($("profile").value);
  readHash(); // the backend list depends on the profile
  $("inputs").addEventListener("input", (e) => {
    if (["profile-file", "config-file", "config-text"].includes(e.target.id)) return;
    if (e.target.id === "profile") usePlanner(e.target.value);
    if (e.target.id === "preset") {
      const p = presets.find((x) => x.name === e.target.value);
      if (p) {
        applySpec(p.spec);
        setError("config", "");
        $("config-warnings").replaceChildren();
      }
    }
    recompute();
  });
  $("config-use").addEventListener("click", () => useConfigText($("config-text").value));
  $("config-file").addEventListener("change", async (e) => {
    const file = e.target.files && e.target.files[0];
    if (!file) return;
    if (file.size > max_config_bytes()) {
      setError("config", `${file.name} is ${file.size} bytes; a model config.json is a few KiB (limit ${max_config_bytes()})`);
      return;
    }
    const text = await file.text();
    $("config-text").value = text;
    useConfigText(text);
  });
  $("inputs").addEventListener("submit", (e) => e.preventDefault());
  $("profile-file").addEventListener("change", (e) => {
    const file = e.target.files && e.target.files[0];
    if (file) loadUserProfile(file);
  });
  window.addEventListener("hashchange", () => {
    readHash();
    usePlanner($("profile").value);
    recompute();
  });
  recompute();
}

main().catch((e) => {
  $("status").textContent = `The calculator could not start: ${e.message || e}`;
});
