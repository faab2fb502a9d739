"use strict";
// The explorer page: sliders decode server-side (debounced, one request in flight), items interpolate, samples.
const $ = (id) => document.getElementById(id);
let info = null, z = [], frames = [], timer = null, inflight = false, pending = false;
const picked = { a: null, b: null };

async function api(path, body) {
  const opts = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  const data = await r.json();
  if (!r.ok) throw new Error(`${r.status}: ${data.error}`);
  say("");  // a later success clears an earlier error
  return data;
}

const label = () => (info.num_classes ? { y: Number($("class").value) } : {});
const say = (text) => { $("status").textContent = text; };

async function decodeNow() {
  if (inflight) { pending = true; return; }
  inflight = true;
  try {
    const r = await api("/api/decode", { z, ...label() });
    $("image").src = r.image;
    $("ms").textContent = `decoded in ${r.ms} ms`;
  } catch (e) { say(e.message); }
  inflight = false;
  if (pending) { pending = false; decodeNow(); }
}

function scheduleDecode() { clearTimeout(timer); timer = setTimeout(decodeNow, 15); }

function buildSliders() {
  for (const d of info.order) {
    const row = document.createElement("label");
    row.className = "slider";
    row.innerHTML = `<span>z[${d}]</span><input type="range" min="-3" max="3" step="0.01" value="${z[d]}"
      data-dim="${d}" title="spread ${info.spread[d].toFixed(2)}"><output>${z[d].toFixed(2)}</output>`;
    const input = row.querySelector("input"), out = row.querySelector("output");
    input.addEventListener("input", () => {
      z[d] = Number(input.value);
      out.textContent = z[d].toFixed(2);
      scheduleDecode();
    });
    $("sliders").appendChild(row);
  }
}

// to the sliders' step (0.01): a code of D numbers stays ~6 bytes a number in the request body
const toStep = (v) => Math.round(Math.max(-3, Math.min(3, v)) * 100) / 100;

function setZ(values) {
  z = values.map(toStep);
  for (const input of document.querySelectorAll("#sliders input")) {
    input.value = z[input.dataset.dim];
    input.nextElementSibling.textContent = z[input.dataset.dim].toFixed(2);
  }
  scheduleDecode();
}

function gaussian() { return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random()); }

// a code drawn from the model's prior where the server draws one (a hierarchy's groups), else N(0, I)
async function random() {
  if (!info.prior_codes) return setZ(z.map(gaussian));
  try { setZ((await api("/api/sample", { n: 1, codes: true, ...label() })).codes[0]); } catch (e) { say(e.message); }
}

function pick(slot, index, src) {
  picked[slot] = index;
  $(`slot-${slot}`).innerHTML = `<img src="${src}" alt="item ${index}">`;
  $("interpolate").disabled = picked.a === null || picked.b === null;
}

async function buildItems() {
  const { items } = await api("/api/items");
  for (const item of items) {
    const img = document.createElement("img");
    img.src = item.image;
    img.alt = `item ${item.index}` + (item.y === null ? "" : ` (class ${item.y})`);
    img.title = img.alt;
    img.draggable = true;
    img.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/plain", String(item.index)));
    img.addEventListener("click", () => {  // fills A, then B; a third click starts a new pair
      const slot = picked.a === null ? "a" : picked.b === null ? "b" : "a";
      if (slot === "a" && picked.b !== null) { picked.b = null; $("slot-b").textContent = "B"; }
      pick(slot, item.index, item.image);
    });
    $("items").appendChild(img);
  }
  for (const slot of document.querySelectorAll(".slot")) {
    slot.addEventListener("dragover", (e) => { e.preventDefault(); slot.classList.add("over"); });
    slot.addEventListener("dragleave", () => slot.classList.remove("over"));
    slot.addEventListener("drop", (e) => {
      e.preventDefault();
      slot.classList.remove("over");
      const index = Number(e.dataTransfer.getData("text/plain"));
      if (items[index]) pick(slot.dataset.slot, index, items[index].image);
    });
  }
}

async function interpolate() {
  try {
    const r = await api("/api/interpolate", { a: picked.a, b: picked.b, steps: 12 });
    frames = r.frames;
    Object.assign($("scrub"), { max: frames.length - 1, value: 0, disabled: false });
    $("frame").src = frames[0];
  } catch (e) { say(e.message); }
}

async function samples() {
  try { $("samples-img").src = (await api("/api/sample", { n: 16, ...label() })).image; } catch (e) { say(e.message); }
}

async function main() {
  info = await api("/api/info");
  const epoch = info.weights_epoch === null ? "" : `, weights of epoch ${info.weights_epoch}`;
  const saved = info.weights_mtime === null ? "" : ` (saved ${info.weights_mtime})`;
  const stale = info.weights_changed ? "; the weights on disk changed since: restart the explorer" : "";
  $("run").textContent = `${info.run}: ${info.latent_dim} latent dims, images ${info.shape.join("x")}${epoch}${saved}${stale}`;
  info.start = info.start || new Array(info.latent_dim).fill(0);  // zeros, or a hierarchy's item 0's code
  z = info.start.map(toStep);
  buildSliders();
  if (info.start.some((v) => v !== 0)) $("zero").textContent = "item 0";
  if (info.num_classes) {
    const name = (k) => (info.classes && info.classes[k] != null ? String(info.classes[k]) : `class ${k}`);
    for (let k = 0; k < info.num_classes; k++) $("class").add(new Option(name(k), String(k)));
    $("class-row").hidden = false;
    $("class").addEventListener("change", scheduleDecode);
  }
  $("zero").addEventListener("click", () => setZ(info.start));
  $("random").addEventListener("click", random);
  $("interpolate").addEventListener("click", interpolate);
  $("scrub").addEventListener("input", () => { $("frame").src = frames[Number($("scrub").value)]; });
  $("samples").addEventListener("click", samples);
  await buildItems();
  await decodeNow();
  document.body.dataset.ready = "1";
}

main().catch((e) => say(e.message));
