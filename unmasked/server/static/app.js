// unmasked web UI: paint a mask, call the REST API (/api/v1), show input | mask | result.
// Plain JavaScript, no build step, no CDN. The mask lives in an off-screen canvas at the
// photo's own resolution: white (opaque) = hole, black = keep, exactly what the API reads.
// The optional sketch (lines a sketch model's fill follows) is a second such canvas:
// white = line; it is sent only when drawn and the selected model has `uses_sketch`.
"use strict";

const $ = (id) => document.getElementById(id);
const API = "/api/v1";
const HISTORY_LIMIT = 40;
const SKETCH_PX = 2;                  // sketch line width in photo pixels (when shown 1:1)
const SKETCH_RGB = [0, 229, 255];     // cyan: stands out on the red mask and on most photos

const state = {
  file: null,          // the photo as uploaded (sent unchanged: the server keeps its size and mode)
  reference: null,
  width: 0, height: 0,
  tool: "brush",
  models: [], defaults: {},
  faceBox: null,       // [x, y, w, h] in photo pixels
  undo: [], redo: [],  // entries {mask?: ImageData, sketch?: ImageData}: the layers one action changed
  hasSketch: false,    // a sketch line is drawn (updated when a stroke ends, on undo / redo / clear)
  busy: false,
  resultUrl: null,
  referenceUrl: null,  // the reference photo shown next to a result it was used for
  referenceBitmap: null,
  referenceBox: null,  // [x, y, w, h] in reference-photo pixels: the face square on the reference
};

const photoCanvas = $("photo-canvas");
const view = $("canvas");            // what the user paints on: photo-sized overlay
const mask = document.createElement("canvas");  // the real mask, photo-sized
const maskCtx = mask.getContext("2d", { willReadFrequently: true });
const sketch = document.createElement("canvas");  // the sketch, photo-sized: white = line
const sketchCtx = sketch.getContext("2d", { willReadFrequently: true });
const layers = { mask: maskCtx, sketch: sketchCtx };

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

function sketchBlocked() {  // a sketch is drawn but the selected model cannot take it
  const m = currentModel();
  return state.hasSketch && !(m && m.uses_sketch);
}

function unmaskOnly() {  // a landmark-guided model: only Remove masks finds the landmarks it needs
  const m = currentModel();
  return Boolean(m && m.uses_landmarks);
}

function updateButtons() {
  $("run").disabled = state.busy || !state.file || sketchBlocked() || unmaskOnly();
  $("run").title = unmaskOnly() ? "This model is guided by the face's landmarks, which only Remove masks finds"
    : sketchBlocked() ? "The selected model has no sketch channel: see the note under the tools" : "";
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
    state.defaults = { fill: body.default_fill, face: body.default_face, unmask: body.default_unmask };
    const select = $("model");
    select.innerHTML = "";
    for (const m of body.models) {
      const opt = document.createElement("option");
      opt.value = m.name;
      opt.textContent = `${m.name} (${m.face_model ? "face model" : m.kind}${m.uses_sketch ? ", sketch" : ""}` +
        `${m.uses_landmarks ? ", Remove masks only" : ""})`;
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
  $("model-help").textContent = m.description + (m.uses_landmarks ? " Use it with Remove masks."
    : m.face_model ? " Drag a face square around the face for best results." : "");
  $("tool-face").disabled = !m.face_model;
  if (!m.face_model && state.tool === "face") selectTool("brush");
  const anyRef = state.models.some((x) => x.uses_reference);
  $("reference-input").disabled = !m.uses_reference;
  $("reference-help").textContent = m.uses_reference
    ? "This model uses the reference photo."
    : anyRef ? "The selected model does not use a reference photo." : "No model on this server uses a reference photo (two_face_faces128 does, where it is installed).";
  updateSketchUi();
}

function updateSketchUi() {
  const m = currentModel();
  const usable = Boolean(m && m.uses_sketch);
  const names = state.models.filter((x) => x.uses_sketch).map((x) => x.name);
  const pick = names.length ? `pick ${names.join(" or ")}` : "no model on this server takes one";
  const pen = $("tool-sketch");
  pen.disabled = !usable;
  pen.title = usable ? "Draw thin lines inside the hole for the fill to follow (S)"
    : `${m ? m.name : "This model"} has no sketch channel: ${pick}`;
  if (!usable && state.tool === "sketch") selectTool("brush");
  $("clear-sketch").disabled = !state.hasSketch;
  const help = $("sketch-help");
  help.classList.toggle("warn", sketchBlocked());
  if (sketchBlocked()) {
    help.textContent = `You drew a sketch, but ${m ? m.name : "this model"} has no sketch channel: ${pick} to fill with it, `
      + "or press Clear sketch to fill without it.";
  } else if (usable) {
    help.textContent = state.hasSketch ? "Your sketch will guide the fill (lines outside the hole are ignored)."
      : "This model takes a sketch: pick Sketch and draw the lines the fill should follow inside the hole.";
  } else {
    help.textContent = names.length ? `Sketch pen: ${pick} to draw lines the fill follows.` : "";
  }
  updateButtons();
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
  for (const c of [photoCanvas, view, mask, sketch]) { c.width = bitmap.width; c.height = bitmap.height; }
  photoCanvas.getContext("2d").drawImage(bitmap, 0, 0);
  for (const ctx of Object.values(layers)) { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, mask.width, mask.height); }
  state.undo = []; state.redo = []; state.faceBox = null; state.hasSketch = false;
  $("stage").hidden = false;
  $("placeholder").hidden = true;
  $("status").textContent = `${file.name}: ${bitmap.width} × ${bitmap.height}`;
  redraw();
  updateSketchUi();
}

// ------------------------------------------------------------------ painting

function grab(names) {
  const entry = {};
  for (const name of names) entry[name] = layers[name].getImageData(0, 0, mask.width, mask.height);
  return entry;
}

function snapshot(names = ["mask"]) {  // before an action on those layers: one undo step
  state.undo.push(grab(names));
  if (state.undo.length > HISTORY_LIMIT) state.undo.shift();
  state.redo = [];
}

function restore(from, to) {  // undo (from = undo, to = redo) or redo: the last action, mask or sketch
  if (!from.length || drag) return;
  const entry = from.pop();
  to.push(grab(Object.keys(entry)));
  for (const [name, data] of Object.entries(entry)) layers[name].putImageData(data, 0, 0);
  if ("sketch" in entry) sketchChanged();
  redraw();
}

function sketchPixels() {  // line pixels of the sketch (white > 127), what the server reads
  const px = sketchCtx.getImageData(0, 0, sketch.width, sketch.height).data;
  let n = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] > 127) n++;
  return n;
}

function sketchChanged() {
  state.hasSketch = sketchPixels() > 0;
  updateSketchUi();
}

function redraw(preview) {
  const ctx = view.getContext("2d");
  ctx.clearRect(0, 0, view.width, view.height);
  // the mask as a translucent red layer: white mask pixels -> red, black -> transparent
  ctx.globalAlpha = 0.55;
  ctx.drawImage(tinted(maskCtx, [255, 32, 32], tintCanvas), 0, 0);
  ctx.globalAlpha = 1;
  if (state.hasSketch || (drag && state.tool === "sketch")) ctx.drawImage(tinted(sketchCtx, SKETCH_RGB, sketchTint), 0, 0);
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

const tintCanvas = document.createElement("canvas"), sketchTint = document.createElement("canvas");
function tinted(layerCtx, rgb, into) {
  // a white-on-black layer as colour `rgb` with the layer's grey level as alpha (black -> transparent)
  into.width = mask.width; into.height = mask.height;
  const data = layerCtx.getImageData(0, 0, mask.width, mask.height);
  const px = data.data;
  for (let i = 0; i < px.length; i += 4) { px[i + 3] = px[i]; px[i] = rgb[0]; px[i + 1] = rgb[1]; px[i + 2] = rgb[2]; }
  into.getContext("2d").putImageData(data, 0, 0);
  return into;
}

function toPhoto(event) {
  const r = view.getBoundingClientRect();
  return { x: (event.clientX - r.left) * (view.width / r.width), y: (event.clientY - r.top) * (view.height / r.height) };
}

function brushWidth() {
  const r = view.getBoundingClientRect();
  return Number($("brush-size").value) * (view.width / Math.max(1, r.width));
}

function sketchWidth() {  // 2 photo pixels, wider only when the photo is shown shrunk (so it stays visible)
  const r = view.getBoundingClientRect();
  return Math.max(SKETCH_PX, 1.5 * view.width / Math.max(1, r.width));
}

const PAINTS = new Set(["brush", "eraser", "sketch"]);  // tools that draw strokes

let drag = null;
view.addEventListener("pointerdown", (e) => {
  if (!state.file || state.busy) return;
  view.setPointerCapture(e.pointerId);
  const p = toPhoto(e);
  drag = { start: p, last: p };
  if (PAINTS.has(state.tool)) {
    snapshot([state.tool === "sketch" ? "sketch" : "mask"]);
    stroke(p, p);
  } else if (state.tool === "rect") {
    snapshot();
  }
});
view.addEventListener("pointermove", (e) => {
  if (!drag) return;
  const p = toPhoto(e);
  if (PAINTS.has(state.tool)) {
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
  const sketched = state.tool === "sketch";
  drag = null;
  if (sketched) sketchChanged();
  redraw();
}
view.addEventListener("pointerup", endDrag);
view.addEventListener("pointercancel", endDrag);

function stroke(a, b) {
  const ctx = state.tool === "sketch" ? sketchCtx : maskCtx;
  ctx.strokeStyle = ctx.fillStyle = state.tool === "eraser" ? "#000" : "#fff";
  ctx.lineWidth = state.tool === "sketch" ? sketchWidth() : brushWidth();
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
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

function canvasBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

function maskWithSketch() {
  // the mask as sent (white = hole) with the sketch in cyan; lines outside the hole, which the
  // server ignores, in a faint cyan
  const c = document.createElement("canvas");
  c.width = mask.width; c.height = mask.height;
  const ctx = c.getContext("2d");
  const m = maskCtx.getImageData(0, 0, c.width, c.height).data, s = sketchCtx.getImageData(0, 0, c.width, c.height).data;
  const out = ctx.createImageData(c.width, c.height), px = out.data;
  for (let i = 0; i < px.length; i += 4) {
    const hole = m[i] > 127;
    const rgb = s[i] > 127 ? (hole ? SKETCH_RGB : [0, 90, 110]) : hole ? [255, 255, 255] : [0, 0, 0];
    px[i] = rgb[0]; px[i + 1] = rgb[1]; px[i + 2] = rgb[2]; px[i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  return c.toDataURL("image/png");
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

function showResults(resultBlob, maskUrl, caption, note, withReference = false) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(resultBlob);
  // the reference photo the fill used, shown next to input | mask | result
  if (state.referenceUrl) URL.revokeObjectURL(state.referenceUrl);
  state.referenceUrl = withReference ? URL.createObjectURL(state.reference) : null;
  $("reference-figure").hidden = !withReference;
  if (withReference) $("reference-img").src = state.referenceUrl;
  $("reference-caption").textContent = withReference && state.referenceBox
    ? `reference (face square ${state.referenceBox.join(", ")})` : "reference";
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
  if (sketchBlocked()) {  // the button is disabled then; never drop a drawn sketch silently
    showError($("sketch-help").textContent);
    return;
  }
  const withSketch = state.hasSketch && m.uses_sketch;
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  form.append("mask", await canvasBlob(mask), "mask.png");
  form.append("model", m.name);
  if (state.faceBox && m.face_model) form.append("box", state.faceBox.join(","));
  const withReference = Boolean(!withSketch && state.reference && m.uses_reference);
  if (withSketch) form.append("sketch", await canvasBlob(sketch), "sketch.png");
  else if (withReference) appendReference(form);
  const r = await post("/inpaint", form, `Filling with ${m.name}…`);
  if (!r) return;
  const note = r.headers.get("X-Unmasked-Note");
  const ms = r.headers.get("X-Unmasked-Elapsed-Ms");
  const lines = r.headers.get("X-Unmasked-Sketch-Pixels");
  const followed = lines === null ? "" : `, following your sketch (${lines} line pixels inside the hole)`;
  const blob = await r.blob();  // before the status line, so "Filled" means the result is on the page
  $("status").textContent = `Filled with ${m.name} in ${(Number(ms) / 1000).toFixed(2)} s${followed}.`;
  showResults(blob, withSketch ? maskWithSketch() : mask.toDataURL("image/png"),
    withSketch ? "mask + sketch (cyan)" : "mask", note ? `Note: ${note}` : "", withReference);
}

async function runUnmask() {
  const m = currentModel();
  const model = m.face_model ? m.name : state.defaults.unmask || state.defaults.face || m.name;
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  form.append("model", model);
  form.append("response_format", "json");
  if (state.faceBox) form.append("boxes", state.faceBox.join(","));
  if ($("region").value) form.append("region", $("region").value);
  form.append("mean_face", $("mean-face").value);
  form.append("mean_texture", $("mean-texture").checked ? "true" : "false");
  form.append("mean_chroma", $("mean-chroma").checked ? "true" : "false");
  form.append("grain", $("grain").checked ? "true" : "false");
  form.append("second_look", $("second-look").checked ? "true" : "false");
  form.append("ear_loops", $("ear-loops").checked ? "true" : "false");
  const info = state.models.find((x) => x.name === model);
  const withReference = Boolean(state.reference && info && info.uses_reference);
  if (withReference) appendReference(form);
  const r = await post("/unmask", form, `Finding faces and removing masks with ${model}…`);
  if (!r) return;
  const body = await r.json();
  const result = await (await fetch(`data:image/png;base64,${body.image}`)).blob();
  const overlay = await detectedOverlay(body);
  const n = body.faces.length;
  const restored = body.faces.filter((f) => f.mask_found !== false).length;
  const withMean = body.faces.filter((f) => f.mean_face).length;
  const mean = withMean ? ` (${withMean} with the mean face's structure)` : "";
  $("status").textContent = `${n} face${n === 1 ? "" : "s"} found, ${restored} restored${mean} with ${model} in ${(body.elapsed_ms / 1000).toFixed(2)} s.`;
  showResults(result, overlay, "detected masks and faces", body.note ? `Note: ${body.note}` : "", withReference);
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

// ------------------------------------------------------------------ the reference photo and its face square
// As in the Two-Face web app, a face square can be drawn on the reference too (a group photo, or
// a face the detector misses); it is sent as `reference_box`. Without one the server aligns the
// reference's largest face.

const refCanvas = $("reference-canvas");

async function openReference(file) {
  state.reference = file;
  state.referenceBox = null;
  state.referenceBitmap = null;
  refCanvas.hidden = true;
  if (file) {
    try {
      state.referenceBitmap = await createImageBitmap(file);
    } catch (_) {
      showError(`Your browser cannot display ${file.name}; try PNG or JPEG.`);
    }
  }
  if (state.referenceBitmap) {
    refCanvas.width = state.referenceBitmap.width;
    refCanvas.height = state.referenceBitmap.height;
    refCanvas.hidden = false;
  }
  drawReference();
}

function drawReference(preview) {
  const b = state.referenceBitmap;
  $("reference-box-text").textContent = !b ? ""
    : state.referenceBox ? `Face square on the reference: ${state.referenceBox.join(", ")} (x, y, w, h); click it to clear.`
    : "Optional: drag a square around the person's face on the reference (otherwise its largest face is used).";
  if (!b) return;
  const ctx = refCanvas.getContext("2d");
  ctx.drawImage(b, 0, 0);
  const scale = refCanvas.width / Math.max(1, refCanvas.getBoundingClientRect().width);
  ctx.lineWidth = Math.max(1, 2 * scale);
  ctx.strokeStyle = "#18c964";
  if (state.referenceBox) ctx.strokeRect(...state.referenceBox);
  if (preview) {
    ctx.setLineDash([6 * scale, 4 * scale]);
    ctx.strokeRect(preview.x, preview.y, preview.w, preview.h);
    ctx.setLineDash([]);
  }
}

function refPoint(event) {
  const r = refCanvas.getBoundingClientRect();
  return { x: (event.clientX - r.left) * (refCanvas.width / r.width), y: (event.clientY - r.top) * (refCanvas.height / r.height) };
}

function refSquare(a, b) {  // the square dragged from a to b, kept inside the reference photo
  const W = refCanvas.width, H = refCanvas.height;
  const x0 = Math.max(0, Math.min(a.x, b.x)), y0 = Math.max(0, Math.min(a.y, b.y));
  const side = Math.min(Math.max(Math.abs(b.x - a.x), Math.abs(b.y - a.y)), W - x0, H - y0);
  return { x: Math.round(x0), y: Math.round(y0), w: Math.round(side), h: Math.round(side) };
}

let refDrag = null;
refCanvas.addEventListener("pointerdown", (e) => {
  if (!state.referenceBitmap || state.busy) return;
  refCanvas.setPointerCapture(e.pointerId);
  refDrag = refPoint(e);
});
refCanvas.addEventListener("pointermove", (e) => { if (refDrag) drawReference(refSquare(refDrag, refPoint(e))); });
function endRefDrag(e) {
  if (!refDrag) return;
  const b = refSquare(refDrag, refPoint(e));
  refDrag = null;
  state.referenceBox = b.w >= 8 ? [b.x, b.y, b.w, b.h] : null;  // a click clears the square
  drawReference();
}
refCanvas.addEventListener("pointerup", endRefDrag);
refCanvas.addEventListener("pointercancel", endRefDrag);

function appendReference(form) {
  form.append("reference", state.reference, state.reference.name);
  if (state.referenceBox) form.append("reference_box", state.referenceBox.join(","));
}

// ------------------------------------------------------------------ wiring

$("image-input").addEventListener("change", (e) => { if (e.target.files[0]) openPhoto(e.target.files[0]); });
$("reference-input").addEventListener("change", (e) => openReference(e.target.files[0] || null));
$("model").addEventListener("change", onModelChange);
$("brush-size").addEventListener("input", (e) => { $("brush-size-value").textContent = e.target.value; });
document.querySelectorAll("button.tool").forEach((b) => b.addEventListener("click", () => selectTool(b.dataset.tool)));
$("undo").addEventListener("click", () => restore(state.undo, state.redo));
$("redo").addEventListener("click", () => restore(state.redo, state.undo));
function clearLayers(names) {  // one undo step
  if (!state.file) return;
  snapshot(names);
  for (const name of names) { layers[name].fillStyle = "#000"; layers[name].fillRect(0, 0, mask.width, mask.height); }
  if (names.includes("sketch")) sketchChanged();
  redraw();
}
$("clear").addEventListener("click", () => { state.faceBox = null; clearLayers(state.hasSketch ? ["mask", "sketch"] : ["mask"]); });
$("clear-sketch").addEventListener("click", () => clearLayers(["sketch"]));
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
  else if (e.key === "s" && !$("tool-sketch").disabled) selectTool("sketch");
  else if (e.key === "e") selectTool("eraser");
  else if (e.key === "r") selectTool("rect");
  else if (e.key === "f" && !$("tool-face").disabled) selectTool("face");
});

// exposed for the browser tests and for debugging from the console
window.unmasked = { state, mask, sketch, sketchPixels };

loadModels();
