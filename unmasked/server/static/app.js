// unmasked web UI: paint a mask, call the REST API (/api/v1), show input | mask | result.
// Plain JavaScript, no build step, no CDN. The mask lives in an off-screen canvas at the
// photo's own resolution: white (opaque) = hole, black = keep, exactly what the API reads.
"use strict";

const $ = (id) => document.getElementById(id);
const API = "/api/v1";
const HISTORY_LIMIT = 40;

const state = {
  file: null,          // the photo as uploaded (sent unchanged: the server keeps its size and mode)
  reference: null,
  width: 0, height: 0,
  tool: "brush",
  models: [], defaults: {},
  faceBox: null,       // [x, y, w, h] in photo pixels
  undo: [], redo: [],
  busy: false,
  resultUrl: null,
};

const photoCanvas = $("photo-canvas");
const view = $("canvas");            // what the user paints on: photo-sized overlay
const mask = document.createElement("canvas");  // the real mask, photo-sized
const maskCtx = mask.getContext("2d", { willReadFrequently: true });

// ------------------------------------------------------------------ errors, progress

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function apiError(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.detail) detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (_) { /* not JSON: keep the status line */ }
  return `The server answered ${response.status}: ${detail}`;
}

let timer = null;
function setBusy(busy, label) {
  state.busy = busy;
  $("progress").hidden = !busy;
  $("status").textContent = busy ? label : $("status").textContent;
  const t0 = performance.now();
  clearInterval(timer);
  if (busy) {
    timer = setInterval(() => { $("status-time").textContent = `${((performance.now() - t0) / 1000).toFixed(1)} s`; }, 100);
  }
  updateButtons();
}

function updateButtons() {
  $("run").disabled = state.busy || !state.file;
  $("unmask").disabled = state.busy || !state.file;
}

// ------------------------------------------------------------------ models

function currentModel() { return state.models.find((m) => m.name === $("model").value); }

async function loadModels() {
  try {
    const r = await fetch(`${API}/models`);
    if (!r.ok) throw new Error(await apiError(r));
    const body = await r.json();
    state.models = body.models;
    state.defaults = { fill: body.default_fill, face: body.default_face };
    const select = $("model");
    select.innerHTML = "";
    for (const m of body.models) {
      const opt = document.createElement("option");
      opt.value = m.name;
      opt.textContent = `${m.name} (${m.face_model ? "face model" : m.kind})`;
      select.appendChild(opt);
    }
    select.value = body.default_fill;
    onModelChange();
  } catch (e) {
    showError(`Could not list the models: ${e.message}`);
  }
}

function onModelChange() {
  const m = currentModel();
  if (!m) return;
  $("model-help").textContent = m.description + (m.face_model ? " Drag a face square around the face for best results." : "");
  $("tool-face").disabled = !m.face_model;
  if (!m.face_model && state.tool === "face") selectTool("brush");
  const anyRef = state.models.some((x) => x.uses_reference);
  $("reference-input").disabled = !m.uses_reference;
  $("reference-help").textContent = m.uses_reference
    ? "This model uses the reference photo."
    : anyRef ? "The selected model does not use a reference photo." : "No installed model uses a reference photo yet (Two-Face is coming).";
}

// ------------------------------------------------------------------ loading a photo

async function openPhoto(file) {
  showError("");
  if (!file.type.startsWith("image/") && !/\.(png|jpe?g|webp|bmp|gif|tiff?)$/i.test(file.name)) {
    showError(`${file.name} does not look like an image.`);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (_) {
    showError(`Your browser cannot display ${file.name}; try PNG or JPEG.`);
    return;
  }
  state.file = file;
  state.width = bitmap.width;
  state.height = bitmap.height;
  for (const c of [photoCanvas, view, mask]) { c.width = bitmap.width; c.height = bitmap.height; }
  photoCanvas.getContext("2d").drawImage(bitmap, 0, 0);
  maskCtx.fillStyle = "#000";
  maskCtx.fillRect(0, 0, mask.width, mask.height);
  state.undo = []; state.redo = []; state.faceBox = null;
  $("stage").hidden = false;
  $("placeholder").hidden = true;
  $("status").textContent = `${file.name}: ${bitmap.width} × ${bitmap.height}`;
  redraw();
  updateButtons();
}

// ------------------------------------------------------------------ painting

function snapshot() {
  state.undo.push(maskCtx.getImageData(0, 0, mask.width, mask.height));
  if (state.undo.length > HISTORY_LIMIT) state.undo.shift();
  state.redo = [];
}

function restore(from, to) {
  if (!from.length) return;
  to.push(maskCtx.getImageData(0, 0, mask.width, mask.height));
  maskCtx.putImageData(from.pop(), 0, 0);
  redraw();
}

function redraw(preview) {
  const ctx = view.getContext("2d");
  ctx.clearRect(0, 0, view.width, view.height);
  // the mask as a translucent red layer: white mask pixels -> red, black -> transparent
  ctx.globalAlpha = 0.55;
  ctx.drawImage(tinted(), 0, 0);
  ctx.globalAlpha = 1;
  const scale = view.width / Math.max(1, view.getBoundingClientRect().width);
  ctx.lineWidth = Math.max(1, 2 * scale);
  if (state.faceBox) {
    ctx.strokeStyle = "#18c964";
    ctx.strokeRect(...state.faceBox);
  }
  if (preview) {
    ctx.strokeStyle = preview.kind === "face" ? "#18c964" : "#fff";
    ctx.setLineDash([6 * scale, 4 * scale]);
    ctx.strokeRect(preview.x, preview.y, preview.w, preview.h);
    ctx.setLineDash([]);
  }
  $("face-box-text").textContent = state.faceBox ? `Face square: ${state.faceBox.join(", ")} (x, y, w, h)` : "";
}

const tintCanvas = document.createElement("canvas");
function tinted() {
  tintCanvas.width = mask.width; tintCanvas.height = mask.height;
  const t = tintCanvas.getContext("2d");
  t.globalCompositeOperation = "source-over";
  t.drawImage(mask, 0, 0);
  t.globalCompositeOperation = "multiply";
  t.fillStyle = "#ff2020";
  t.fillRect(0, 0, mask.width, mask.height);
  // black stays black: make it transparent by using the mask as alpha
  t.globalCompositeOperation = "destination-in";
  t.drawImage(maskAlpha(), 0, 0);
  return tintCanvas;
}

const alphaCanvas = document.createElement("canvas");
function maskAlpha() {
  alphaCanvas.width = mask.width; alphaCanvas.height = mask.height;
  const a = alphaCanvas.getContext("2d");
  const data = maskCtx.getImageData(0, 0, mask.width, mask.height);
  const px = data.data;
  for (let i = 0; i < px.length; i += 4) { px[i + 3] = px[i]; }
  a.putImageData(data, 0, 0);
  return alphaCanvas;
}

function toPhoto(event) {
  const r = view.getBoundingClientRect();
  return { x: (event.clientX - r.left) * (view.width / r.width), y: (event.clientY - r.top) * (view.height / r.height) };
}

function brushWidth() {
  const r = view.getBoundingClientRect();
  return Number($("brush-size").value) * (view.width / Math.max(1, r.width));
}

let drag = null;
view.addEventListener("pointerdown", (e) => {
  if (!state.file || state.busy) return;
  view.setPointerCapture(e.pointerId);
  const p = toPhoto(e);
  drag = { start: p, last: p };
  if (state.tool === "brush" || state.tool === "eraser") {
    snapshot();
    stroke(p, p);
  } else if (state.tool === "rect") {
    snapshot();
  }
});
view.addEventListener("pointermove", (e) => {
  if (!drag) return;
  const p = toPhoto(e);
  if (state.tool === "brush" || state.tool === "eraser") {
    stroke(drag.last, p);
    drag.last = p;
  } else {
    redraw({ kind: state.tool, ...box(drag.start, p, state.tool === "face") });
  }
});
function endDrag(e) {
  if (!drag) return;
  const p = toPhoto(e);
  if (state.tool === "rect") {
    const b = box(drag.start, p, false);
    maskCtx.fillStyle = "#fff";
    maskCtx.fillRect(b.x, b.y, b.w, b.h);
  } else if (state.tool === "face") {
    const b = box(drag.start, p, true);
    state.faceBox = b.w >= 8 ? [b.x, b.y, b.w, b.h] : null;
  }
  drag = null;
  redraw();
}
view.addEventListener("pointerup", endDrag);
view.addEventListener("pointercancel", endDrag);

function stroke(a, b) {
  maskCtx.strokeStyle = maskCtx.fillStyle = state.tool === "eraser" ? "#000" : "#fff";
  maskCtx.lineWidth = brushWidth();
  maskCtx.lineCap = maskCtx.lineJoin = "round";
  maskCtx.beginPath();
  maskCtx.moveTo(a.x, a.y);
  maskCtx.lineTo(b.x, b.y);
  maskCtx.stroke();
  scheduleRedraw();
}

let frame = 0;
function scheduleRedraw() {  // at most one redraw per animation frame while painting
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; redraw(); });
}

function box(a, b, square) {
  let x0 = Math.max(0, Math.min(a.x, b.x)), y0 = Math.max(0, Math.min(a.y, b.y));
  let x1 = Math.min(state.width, Math.max(a.x, b.x)), y1 = Math.min(state.height, Math.max(a.y, b.y));
  if (square) {
    const side = Math.min(Math.max(x1 - x0, y1 - y0), state.width - x0, state.height - y0);
    x1 = x0 + side; y1 = y0 + side;
  }
  return { x: Math.round(x0), y: Math.round(y0), w: Math.round(x1 - x0), h: Math.round(y1 - y0) };
}

function selectTool(tool) {
  state.tool = tool;
  document.querySelectorAll("button.tool").forEach((b) => b.classList.toggle("active", b.dataset.tool === tool));
}

// ------------------------------------------------------------------ calling the API

function maskBlob() {
  return new Promise((resolve) => mask.toBlob(resolve, "image/png"));
}

async function post(path, form, label) {
  showError("");
  setBusy(true, label);
  try {
    const r = await fetch(`${API}${path}`, { method: "POST", body: form });
    if (!r.ok) throw new Error(await apiError(r));
    return r;
  } catch (e) {
    showError(e.message.startsWith("The server") ? e.message : `Request failed: ${e.message}`);
    $("status").textContent = "";
    return null;
  } finally {
    setBusy(false);
  }
}

function showResults(resultBlob, maskUrl, caption, note) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(resultBlob);
  $("input-img").src = photoCanvas.toDataURL("image/png");
  $("mask-img").src = maskUrl;
  $("mask-caption").textContent = caption;
  $("result-img").src = state.resultUrl;
  const base = state.file.name.replace(/\.[^.]+$/, "");
  $("download").href = state.resultUrl;
  $("download").download = `${base}_filled.png`;
  $("result-note").textContent = note || "";
  $("results").hidden = false;
  $("results").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

async function runFill() {
  const m = currentModel();
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  form.append("mask", await maskBlob(), "mask.png");
  form.append("model", m.name);
  if (state.faceBox && m.face_model) form.append("box", state.faceBox.join(","));
  if (state.reference && m.uses_reference) form.append("reference", state.reference, state.reference.name);
  const r = await post("/inpaint", form, `Filling with ${m.name}…`);
  if (!r) return;
  const note = r.headers.get("X-Unmasked-Note");
  const ms = r.headers.get("X-Unmasked-Elapsed-Ms");
  $("status").textContent = `Filled with ${m.name} in ${(Number(ms) / 1000).toFixed(2)} s.`;
  showResults(await r.blob(), mask.toDataURL("image/png"), "mask", note ? `Note: ${note}` : "");
}

async function runUnmask() {
  const m = currentModel();
  const model = m.face_model ? m.name : state.defaults.face || m.name;
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  form.append("model", model);
  form.append("response_format", "json");
  if (state.faceBox) form.append("boxes", state.faceBox.join(","));
  if ($("region").value) form.append("region", $("region").value);
  const r = await post("/unmask", form, `Finding faces and removing masks with ${model}…`);
  if (!r) return;
  const body = await r.json();
  const result = await (await fetch(`data:image/png;base64,${body.image}`)).blob();
  const overlay = await detectedOverlay(body);
  const n = body.faces.length;
  const restored = body.faces.filter((f) => f.mask_found !== false).length;
  $("status").textContent = `${n} face${n === 1 ? "" : "s"} found, ${restored} restored with ${model} in ${(body.elapsed_ms / 1000).toFixed(2)} s.`;
  showResults(result, overlay, "detected masks and faces", body.note ? `Note: ${body.note}` : "");
}

async function detectedOverlay(body) {
  // the photo with the detected worn masks in red and each face box in green
  const img = new Image();
  img.src = `data:image/png;base64,${body.detected || body.mask}`;
  await img.decode();
  const c = document.createElement("canvas");
  c.width = state.width; c.height = state.height;
  const ctx = c.getContext("2d");
  ctx.drawImage(photoCanvas, 0, 0);
  const t = document.createElement("canvas");
  t.width = c.width; t.height = c.height;
  const tc = t.getContext("2d");
  tc.drawImage(img, 0, 0);
  const data = tc.getImageData(0, 0, t.width, t.height);
  for (let i = 0; i < data.data.length; i += 4) {
    const on = data.data[i] > 127;
    data.data[i] = 255; data.data[i + 1] = 32; data.data[i + 2] = 32; data.data[i + 3] = on ? 140 : 0;
  }
  tc.putImageData(data, 0, 0);
  ctx.drawImage(t, 0, 0);
  ctx.strokeStyle = "#18c964";
  ctx.lineWidth = Math.max(2, c.width / 300);
  for (const f of body.faces) ctx.strokeRect(...f.box);
  return c.toDataURL("image/png");
}

// ------------------------------------------------------------------ wiring

$("image-input").addEventListener("change", (e) => { if (e.target.files[0]) openPhoto(e.target.files[0]); });
$("reference-input").addEventListener("change", (e) => { state.reference = e.target.files[0] || null; });
$("model").addEventListener("change", onModelChange);
$("brush-size").addEventListener("input", (e) => { $("brush-size-value").textContent = e.target.value; });
document.querySelectorAll("button.tool").forEach((b) => b.addEventListener("click", () => selectTool(b.dataset.tool)));
$("undo").addEventListener("click", () => restore(state.undo, state.redo));
$("redo").addEventListener("click", () => restore(state.redo, state.undo));
$("clear").addEventListener("click", () => {
  if (!state.file) return;
  snapshot();
  maskCtx.fillStyle = "#000";
  maskCtx.fillRect(0, 0, mask.width, mask.height);
  state.faceBox = null;
  redraw();
});
$("run").addEventListener("click", runFill);
$("unmask").addEventListener("click", runUnmask);

const drop = $("drop");
for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
drop.addEventListener("drop", (e) => { const f = e.dataTransfer.files[0]; if (f) openPhoto(f); });
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => { e.preventDefault(); const f = e.dataTransfer && e.dataTransfer.files[0]; if (f) openPhoto(f); });

document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
  if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); restore(state.undo, state.redo); }
  else if ((e.ctrlKey || e.metaKey) && e.key === "y") { e.preventDefault(); restore(state.redo, state.undo); }
  else if (e.key === "b") selectTool("brush");
  else if (e.key === "e") selectTool("eraser");
  else if (e.key === "r") selectTool("rect");
  else if (e.key === "f" && !$("tool-face").disabled) selectTool("face");
});

// exposed for the browser tests and for debugging from the console
window.unmasked = { state, mask };

loadModels();
