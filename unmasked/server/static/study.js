// Realism study: one face at a time, a 1-10 rating each, saved at once (POST /api/v1/study/ratings).
// The session id lives in localStorage, so a rater who reloads continues where they stopped.
"use strict";

const $ = (id) => document.getElementById(id);
const API = "/api/v1/study";

function sessionId() {
  let id = localStorage.getItem("unmasked-study-session");
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("unmasked-study-session", id);
  }
  return id;
}

const session = sessionId();
let current = null;
let busy = false;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function detail(r) {
  try { return (await r.json()).detail; } catch (_) { return `${r.status} ${r.statusText}`; }
}

async function next() {
  const r = await fetch(`${API}/next?session=${session}`);
  if (!r.ok) { showError(`Cannot load the study: ${await detail(r)}`); return; }
  const body = await r.json();
  if (body.done) {
    $("study-img").hidden = $("scale").hidden = $("scale-labels").hidden = true;
    $("done").hidden = false;
    $("progress-text").textContent = `${body.total} of ${body.total} rated`;
    current = null;
    return;
  }
  current = body.item;
  const img = $("study-img");
  img.src = body.url;
  await img.decode().catch(() => {});
  img.hidden = $("scale").hidden = $("scale-labels").hidden = false;
  $("progress-text").textContent = `Face ${body.index} of ${body.total}`;
}

async function rate(score) {
  if (!current || busy) return;
  busy = true;
  showError("");
  try {
    const r = await fetch(`${API}/ratings`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ session, item: current, score }),
    });
    if (!r.ok) { showError(`Could not save the rating: ${await detail(r)}`); return; }
    await next();
  } catch (e) {
    showError(`Could not save the rating: ${e.message}`);
  } finally {
    busy = false;
  }
}

for (let s = 1; s <= 10; s++) {
  const b = document.createElement("button");
  b.textContent = String(s);
  b.id = `rate-${s}`;
  b.addEventListener("click", () => rate(s));
  $("scale").appendChild(b);
}
document.addEventListener("keydown", (e) => {
  if (/^[0-9]$/.test(e.key)) rate(e.key === "0" ? 10 : Number(e.key));
});
next();
