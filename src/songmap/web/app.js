// songmap's page: upload a file as a job, follow its progress, draw the track's map.
// Plain JS, no build step, nothing loaded from outside this server.
//
// Views of one result: an overview of the whole track (doubles as the minimap of the
// detailed lane below it), the detailed lane at a chosen number of bars per screen, and a
// chord sheet. Loops, playback speed, a grid editor and the DJ facts work on all of them.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 300;
const ZOOMS = [2, 4, 8, 16, 32, 64, 128, 256];  // bars per screen; "all" is added per track
const DEFAULT_BARS_PER_SCREEN = 16;
const SHEET_BARS_PER_LINE = 4;
const NUDGE_S = 0.01;
const DRAG_PX = 6;                 // a press that moves further is a loop drag, not a click

const state = {
  result: null,        // what is shown (the original or the edited grid)
  original: null,      // as the server decided
  edits: null,         // grid edits applied to `original` (see editGrid)
  jobId: null, libraryId: null, file: null,
  pxPerSec: 1, barsPerScreen: DEFAULT_BARS_PER_SCREEN,
  peaks: null, audioUrl: null, raf: 0,
  loop: null,          // {first, last, start, end}: bars and seconds
  drag: null,
  names: "lead", transpose: 0, view: "map",
  editedUrl: null,
};

// ---------------------------------------------------------------- chord names
const PC = { C: 0, D: 2, E: 4, F: 5, G: 7, A: 9, B: 11 };
const SHARP_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
const FLAT_NAMES = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"];
const QUALITY_NAMES = { maj: "", min: "m", "7": "7", maj7: "maj7", min7: "m7", dim: "dim",
                        aug: "aug", sus4: "sus4", sus2: "sus2", hdim7: "m7b5", dim7: "dim7",
                        "5": "5", "1": "" };

function pitchClass(note) {
  if (!note || !(note[0] in PC)) return null;
  let pc = PC[note[0]];
  for (const c of note.slice(1)) pc += c === "#" ? 1 : c === "b" ? -1 : 0;
  return ((pc % 12) + 12) % 12;
}

function chordName(harte) {
  if (!harte || harte === "N") return "N.C.";
  const [root, rest = "maj"] = harte.split(":");
  const [quality, bass] = rest.split("/");
  const q = quality in QUALITY_NAMES ? QUALITY_NAMES[quality] : quality;
  return root + q + (bass ? "/" + bass : "");
}

// Keys whose signature has flats (and F major / D minor): there a root is spelled Db, not C#.
function keyUsesFlats(tonicPc, minor) {
  const major = minor ? (tonicPc + 3) % 12 : tonicPc;
  return [5, 10, 3, 8, 1, 6].includes(major);
}

function keyOf(result) {
  const label = result && result.key && result.key.label;
  if (!label || label === "N") return null;
  const [tonic, mode] = label.split(" ");
  const pc = pitchClass(tonic);
  return pc == null ? null : { pc, minor: mode === "minor" };
}

// A Harte label moved by `semitones`, roots spelled for the (moved) key of the song.
function transposeHarte(harte, semitones, flats) {
  if (!harte || harte === "N" || harte === "X") return harte;
  const names = flats ? FLAT_NAMES : SHARP_NAMES;
  const [root, rest = "maj"] = harte.split(":");
  const [quality, bass] = rest.split("/");
  const pc = pitchClass(root);
  if (pc == null) return harte;
  let out = names[(pc + semitones + 120) % 12] + ":" + quality;
  if (bass) {
    // a bass degree (3, b7) stays a degree; a bass note name moves with the root
    const bpc = pitchClass(bass);
    out += "/" + (bpc == null ? bass : names[(bpc + semitones + 120) % 12]);
  }
  return out;
}

// The names of one bar's chords as the chord sheet / lane show them.
function barNames(bar, mode = state.names, semitones = state.transpose) {
  const chords = bar.chords.length ? bar.chords : [bar.chord];
  const key = keyOf(state.result);
  if (semitones === 0) {
    if (mode === "harte") return chords;
    // names spelled in the key (Db, not C#, in flat keys) when the result has them
    if (bar.names && bar.names.length === chords.length) return bar.names;
    return chords.map(chordName);
  }
  const flats = key ? keyUsesFlats((key.pc + semitones + 120) % 12, key.minor) : false;
  const moved = chords.map((c) => transposeHarte(c, semitones, flats));
  return mode === "harte" ? moved : moved.map(chordName);
}

// A colour per chord root, neighbours on the circle of fifths get neighbouring hues.
function chordColour(harte) {
  if (!harte || harte === "N") return "#e4e6ec";
  const pc = pitchClass(harte.split(":")[0]);
  if (pc == null) return "#e4e6ec";
  const hue = Math.round(((pc * 7) % 12) * 30);
  const minor = /:(min|dim|hdim)/.test(harte);
  return `hsl(${hue} ${minor ? 55 : 70}% ${minor ? 84 : 76}%)`;
}

function clock(seconds, tenths = false) {
  const s = Math.max(0, seconds);
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  const sec = tenths ? rest.toFixed(1).padStart(4, "0") : String(Math.floor(rest)).padStart(2, "0");
  return `${m}:${sec}`;
}

// ---------------------------------------------------------------- messages
function showStatus(text, fraction) {
  $("status").hidden = false;
  $("status-text").textContent = text;
  $("status-pct").textContent = fraction == null ? "" : `${Math.round(fraction * 100)}%`;
  $("progress-bar").style.width = `${Math.round((fraction || 0) * 100)}%`;
}

function showError(message) {
  $("status").hidden = true;
  const box = $("error");
  box.hidden = false;
  box.textContent = message;
}

function errorText(bodyOrText, status) {
  // Error bodies are {"error": {"type", "message", "id"}}; a server fault's message names its id.
  try {
    const body = typeof bodyOrText === "string" ? JSON.parse(bodyOrText) : bodyOrText;
    if (body && body.error && body.error.message) return body.error.message;
  } catch (e) { /* not JSON */ }
  return `The server answered ${status}.`;
}

// ---------------------------------------------------------------- API key
// A server started with an API key answers 401 without it. The page then asks for the key,
// keeps it in memory (and in localStorage when "remember" is ticked) and sends it with
// every request as X-API-Key: a custom header no page of another site can send here.
const KEY_STORE = "songmap.apiKey";
let apiKey = null;
try { apiKey = localStorage.getItem(KEY_STORE); } catch (e) { /* storage disabled */ }
let keyWaiters = [];

function keyHeaders() { return apiKey ? { "X-API-Key": apiKey } : {}; }

function askForKey(message) {
  $("key-why").textContent = message || "This server needs its API key.";
  $("key-form").hidden = false;
  $("key-input").focus();
  return new Promise((resolve) => keyWaiters.push(resolve));
}

function setupKeyForm() {
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    apiKey = $("key-input").value.trim() || null;
    try {
      if (apiKey && $("key-remember").checked) localStorage.setItem(KEY_STORE, apiKey);
      else localStorage.removeItem(KEY_STORE);
    } catch (e) { /* kept in memory only */ }
    $("key-input").value = "";
    $("key-form").hidden = true;
    const waiting = keyWaiters;
    keyWaiters = [];
    for (const resolve of waiting) resolve();
  });
  // Downloads are links; with a key they are fetched with it and saved from a blob.
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest && ev.target.closest("a[download]");
    if (!a || !apiKey || !/^\/(jobs|library)\//.test(a.getAttribute("href") || "")) return;
    ev.preventDefault();
    downloadWithKey(a).catch((err) => showError(err.message || String(err)));
  });
}

async function downloadWithKey(link) {
  const r = await api(link.getAttribute("href"));
  if (!r.ok) throw new Error(errorText(await r.text(), r.status));
  const url = URL.createObjectURL(await r.blob());
  const save = document.createElement("a");
  save.href = url;
  save.download = link.download || downloadName(r.headers.get("Content-Disposition")) || "songmap";
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function downloadName(disposition) {
  const m = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "") || /filename="([^"]+)"/i.exec(disposition || "");
  try { return m ? decodeURIComponent(m[1]) : null; } catch (e) { return null; }
}

// fetch() with the key; on 401 the page asks for the key and tries again.
async function api(url, options = {}) {
  for (;;) {
    const r = await fetch(url, { ...options, headers: { ...(options.headers || {}), ...keyHeaders() } });
    if (r.status !== 401) return r;
    await askForKey(errorText(await r.text(), r.status));
  }
}

// ---------------------------------------------------------------- upload and job
function uploadJob(file, overrides = null) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/jobs");
    for (const [name, value] of Object.entries(keyHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) showStatus("Uploading…", e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status === 202) resolve(JSON.parse(xhr.responseText));
      else if (xhr.status === 401) {
        const err = new Error(errorText(xhr.responseText, xhr.status));
        err.needKey = true;
        reject(err);
      } else {
        const retry = xhr.getResponseHeader("Retry-After");
        const err = new Error(errorText(xhr.responseText, xhr.status));
        err.retryAfter = xhr.status === 503 && retry ? Number(retry) : null;
        reject(err);
      }
    };
    xhr.onerror = () => reject(new Error("The upload failed: is the server running?"));
    const form = new FormData();
    form.append("file", file, file.name);
    for (const [name, value] of Object.entries(overrides || {})) form.append(name, String(value));
    xhr.send(form);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitForJob(job) {
  for (;;) {
    if (job.state === "done") return job;
    if (job.state === "failed") throw new Error(errorText({ error: job.error }, job.error_status));
    showStatus(job.state === "queued" ? "Waiting for a free worker…" : "Analysing…",
               job.state === "queued" ? 0 : Math.max(0.05, job.progress));
    await sleep(POLL_MS);
    const r = await api(`/jobs/${job.id}`);
    if (!r.ok) throw new Error(errorText(await r.text(), r.status));
    job = await r.json();
  }
}

async function runJob(file, overrides = null) {
  let job;
  for (let attempt = 0; ; attempt++) {
    try {
      job = await uploadJob(file, overrides);
      break;
    } catch (err) {
      if (err.needKey) {
        await askForKey(err.message);
        continue;
      }
      if (err.retryAfter && attempt < 5) {
        showStatus(`The server is busy; retrying in ${err.retryAfter} s…`, 0);
        await sleep(err.retryAfter * 1000);
        continue;
      }
      throw err;
    }
  }
  job = await waitForJob(job);
  showStatus("Loading the result…", 1);
  const r = await api(`/jobs/${job.id}/result`);
  if (!r.ok) throw new Error(errorText(await r.text(), r.status));
  return { job, result: await r.json() };
}

async function analyse(file) {
  $("error").hidden = true;
  $("result").hidden = true;
  stopPlayback();
  showStatus("Uploading…", 0);
  const peaksPromise = computePeaks(file);  // decodes in the browser while the server works
  const { job, result } = await runJob(file);
  state.jobId = job.id;
  state.libraryId = null;
  state.file = file;
  state.peaks = await peaksPromise;
  if (state.audioUrl) URL.revokeObjectURL(state.audioUrl);
  state.audioUrl = URL.createObjectURL(file);
  $("audio").src = state.audioUrl;
  show(result);
  $("status").hidden = true;
  loadLibrary();
}

// ---------------------------------------------------------------- waveform
async function computePeaks(file) {
  // Min/max of the first channel per bucket; the page still works without it.
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    const ctx = new Ctx();
    const audio = await ctx.decodeAudioData(await file.arrayBuffer());
    ctx.close();
    const data = audio.getChannelData(0);
    // ~400 buckets a second (capped): fine enough for a few bars per screen
    const buckets = Math.max(1, Math.min(data.length, Math.round(Math.min(audio.duration * 400, 400000))));
    const step = Math.max(1, Math.floor(data.length / buckets));
    const mins = new Float32Array(buckets), maxs = new Float32Array(buckets);
    for (let b = 0; b < buckets; b++) {
      let lo = 0, hi = 0;
      const end = Math.min(data.length, (b + 1) * step);
      for (let i = b * step; i < end; i++) {
        const v = data[i];
        if (v < lo) lo = v; else if (v > hi) hi = v;
      }
      mins[b] = lo; maxs[b] = hi;
    }
    return { mins, maxs, duration: audio.duration };
  } catch (e) {
    return null;
  }
}

// ---------------------------------------------------------------- showing a result
function show(result) {
  state.original = result;
  state.edits = null;
  state.loop = null;
  state.transpose = 0;
  if (state.editedUrl) { URL.revokeObjectURL(state.editedUrl); state.editedUrl = null; }
  $("ge-status").textContent = "The page redraws at once; the JSON download carries your grid.";
  $("result").hidden = false;
  render(result);
}

function render(result) {
  state.result = result;
  renderHeader(result);
  renderDj(result);
  fillZoomChoices(result);
  layoutMap();
  renderOverview(result);
  renderSheet();
  renderLoop();
  renderDownloads(result);
  $("ge-meter").value = String(result.time_signature.beats_per_bar);
}

function renderHeader(r) {
  $("track-name").textContent = r.filename;
  const alt = r.tempo.alternative_bpm ? ` <small>(or ${r.tempo.alternative_bpm.toFixed(1)})</small>` : "";
  $("fact-bpm").innerHTML = `${r.tempo.bpm.toFixed(1)}${alt}`;
  const key = r.key.label === "N" ? "—" : (r.key.name || r.key.label);  // spelled: Db major
  $("fact-key").innerHTML = "";
  $("fact-key").append(key);
  if (r.key.camelot) {
    const small = document.createElement("small");
    small.textContent = ` ${r.key.camelot}`;
    small.title = "Camelot";
    $("fact-key").append(small);
  }
  $("fact-meter").textContent = r.time_signature.label;
  $("fact-bars").textContent = String(r.total_bars);
  $("fact-duration").textContent = clock(r.audio.duration);
}

// ---------------------------------------------------------------- DJ facts
const CAMELOT_KEYS = {
  "1A": "Ab minor", "1B": "B major", "2A": "Eb minor", "2B": "F# major", "3A": "Bb minor",
  "3B": "Db major", "4A": "F minor", "4B": "Ab major", "5A": "C minor", "5B": "Eb major",
  "6A": "G minor", "6B": "Bb major", "7A": "D minor", "7B": "F major", "8A": "A minor",
  "8B": "C major", "9A": "E minor", "9B": "G major", "10A": "B minor", "10B": "D major",
  "11A": "F# minor", "11B": "A major", "12A": "C# minor", "12B": "E major",
};

// Keys that mix with `camelot`: the same, one step either way on the wheel, the relative key.
function compatibleKeys(camelot) {
  const m = /^(\d{1,2})([AB])$/.exec(camelot || "");
  if (!m) return [];
  const n = Number(m[1]), letter = m[2];
  const wrap = (k) => ((k - 1 + 12) % 12) + 1;
  const openKey = (k, l) => `${wrap(k - 7)}${l === "A" ? "m" : "d"}`;
  const code = (k, l, why) => ({ camelot: `${wrap(k)}${l}`, openKey: openKey(k, l), why,
                                 key: CAMELOT_KEYS[`${wrap(k)}${l}`] });
  return [code(n, letter, "same key"), code(n - 1, letter, "−1"), code(n + 1, letter, "+1"),
          code(n, letter === "A" ? "B" : "A", "relative")];
}

// Thresholds as the CLI summary's: tempo/meter/grid are shares of the music that carries
// them; the key network's confidence spreads thinner, so it has its own scale.
function confidenceWords(value, { sure = 0.75, guess = 0.5, closeCall = false } = {}) {
  if (value == null) return { words: "not measured", level: 0 };
  if (value < guess) return { words: "a guess", level: 1 };
  if (value < sure || closeCall) return { words: "uncertain", level: 2 };
  return { words: value >= sure + (1 - sure) / 2 ? "sure" : "fairly sure", level: value >= sure + (1 - sure) / 2 ? 4 : 3 };
}

function renderDj(r) {
  const keys = $("dj-keys");
  keys.textContent = "";
  const compatible = compatibleKeys(r.key.camelot);
  if (!compatible.length) keys.textContent = "no key found";
  for (const k of compatible) {
    const el = document.createElement("span");
    el.className = "dj-key";
    el.title = `${k.key} · ${k.why}`;
    el.innerHTML = `<b></b> <small></small>`;
    el.querySelector("b").textContent = k.camelot;
    el.querySelector("small").textContent = `${k.openKey} · ${k.why}`;
    keys.append(el);
  }
  const bpm = r.tempo.bpm;
  $("dj-tempo").textContent = bpm > 0
    ? `${bpm.toFixed(1)} BPM · half ${(bpm / 2).toFixed(1)} · double ${(bpm * 2).toFixed(1)}`
    : "no steady beat";
  const runner = r.key.runner_up_confidence || 0;
  const rows = [
    ["Tempo", r.tempo.confidence, confidenceWords(r.tempo.confidence)],
    ["Key", r.key.confidence, confidenceWords(r.key.confidence, {
      sure: 0.5, guess: 0.25, closeCall: runner >= r.key.confidence / 2 })],
    ["Meter", r.time_signature.confidence, confidenceWords(r.time_signature.confidence)],
    ["Grid", r.grid_confidence, confidenceWords(r.grid_confidence)],
  ];
  const box = $("dj-conf");
  box.textContent = "";
  for (const [what, value, { words, level }] of rows) {
    const el = document.createElement("span");
    el.className = `conf conf-${level}`;
    el.dataset.what = what.toLowerCase();
    el.title = value == null ? `${what}: not measured` : `${what}: confidence ${value.toFixed(2)}`;
    const meter = "<i></i>".repeat(4);
    el.innerHTML = `<span class="conf-what"></span> <span class="conf-bars">${meter}</span> <span class="conf-words"></span>`;
    el.querySelector(".conf-what").textContent = what;
    el.querySelector(".conf-words").textContent = what === "Key" && level === 2 && r.key.runner_up
      ? `${words} (or ${r.key.runner_up})` : words;
    box.append(el);
  }
}

// ---------------------------------------------------------------- zoom and the detailed lane
function averageBar(r) {
  const d = Math.max(r.audio.duration, 0.1);
  return r.downbeat_timeline.length ? (r.average_bar_duration || d / r.downbeat_timeline.length) : 2;
}

function fillZoomChoices(r) {
  const sel = $("zoom");
  const total = Math.max(1, r.total_bars);
  const choices = ZOOMS.filter((z) => z < total).concat([total]);
  sel.textContent = "";
  for (const z of choices) {
    const o = document.createElement("option");
    o.value = String(z);
    o.textContent = z === total ? `all ${total} bars` : `${z} bars`;
    sel.append(o);
  }
  state.barsPerScreen = Math.min(state.barsPerScreen, total);
  if (!choices.includes(state.barsPerScreen)) {
    state.barsPerScreen = choices.find((z) => z >= state.barsPerScreen) || total;
  }
  sel.value = String(state.barsPerScreen);
}

function setZoom(barsPerScreen) {
  if (!state.result) return;
  const choices = [...$("zoom").options].map((o) => Number(o.value));
  const z = choices.reduce((a, b) => (Math.abs(b - barsPerScreen) < Math.abs(a - barsPerScreen) ? b : a));
  const scroller = $("scroller");
  const centre = (scroller.scrollLeft + scroller.clientWidth / 2) / state.pxPerSec;
  state.barsPerScreen = z;
  $("zoom").value = String(z);
  layoutMap();
  scroller.scrollLeft = Math.max(0, centre * state.pxPerSec - scroller.clientWidth / 2);
  drawVisibleWave();
  updateWindow();
}

function zoomStep(direction) {  // +1: fewer bars per screen
  const choices = [...$("zoom").options].map((o) => Number(o.value));
  const i = choices.indexOf(state.barsPerScreen);
  const j = Math.max(0, Math.min(choices.length - 1, i - direction));
  setZoom(choices[j]);
}

function layoutMap() {
  const r = state.result;
  const duration = Math.max(r.audio.duration, 0.1);
  const view = Math.max(200, $("scroller").clientWidth - 2);
  // "all bars" is the whole track, lead-in and tail included
  state.pxPerSec = state.barsPerScreen >= r.total_bars ? view / duration
    : Math.max(view / duration, view / (state.barsPerScreen * averageBar(r)));
  const width = Math.ceil(duration * state.pxPerSec);
  const map = $("map");
  map.style.width = `${width}px`;
  map.dataset.totalBars = String(r.total_bars);
  map.dataset.barsPerScreen = String(state.barsPerScreen);
  // bars too narrow for names: the chord lane shows colours only (names in the tooltip)
  map.classList.toggle("narrow", averageBar(r) * state.pxPerSec < 44);
  renderBars(r.downbeat_timeline);
  renderChords(r.chord_progression);
  drawVisibleWave();
  renderLoop();
  movePlayhead($("audio").currentTime || 0);  // a resize redraws where playback is
}

// The wave canvas covers only what is on screen (a long track at high zoom would need a
// canvas wider than browsers allow); it is redrawn as the lane scrolls.
function drawVisibleWave() {
  const r = state.result;
  if (!r) return;
  const scroller = $("scroller");
  const canvas = $("wave");
  const width = Math.max(1, scroller.clientWidth);
  const left = scroller.scrollLeft;
  const ratio = window.devicePixelRatio || 1;
  const height = 120;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.style.left = `${left}px`;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const mid = height / 2;
  const css = getComputedStyle(document.documentElement);
  g.fillStyle = css.getPropertyValue("--wave").trim() || "#9aa8c7";
  const p = state.peaks;
  if (p) {
    const n = p.mins.length;
    const bucketsPerPx = n / (p.duration * state.pxPerSec);
    for (let x = 0; x < width; x++) {
      const b0 = Math.floor((left + x) * bucketsPerPx);
      const b1 = Math.max(b0 + 1, Math.floor((left + x + 1) * bucketsPerPx));
      let lo = 0, hi = 0;
      for (let b = b0; b < Math.min(b1, n); b++) {
        if (p.mins[b] < lo) lo = p.mins[b];
        if (p.maxs[b] > hi) hi = p.maxs[b];
      }
      const top = mid - hi * (mid - 4), bottom = mid - lo * (mid - 4);
      g.fillRect(x, top, 1, Math.max(1, bottom - top));
    }
  } else {
    g.fillRect(0, mid, width, 1);
  }
  // beat ticks: tall at downbeats; a dot for how close the transient lies
  const down = css.getPropertyValue("--down").trim() || "#d1345b";
  const ink = css.getPropertyValue("--ink").trim() || "#1d2330";
  const t0 = left / state.pxPerSec, t1 = (left + width) / state.pxPerSec;
  for (const beat of r.beat_transient_markers) {
    if (beat.beat_time < t0 - 1 || beat.beat_time > t1 + 1) continue;
    const x = Math.round(beat.beat_time * state.pxPerSec - left) + 0.5;
    const isDown = beat.beat_position === 1 && beat.bar > 0;
    g.fillStyle = isDown ? down : ink;
    g.globalAlpha = isDown ? 0.9 : 0.55;
    const h = isDown ? 26 : 14;
    g.fillRect(x - 0.5, height - h, 1, h);
    if (beat.accuracy != null) {
      g.globalAlpha = 0.3 + 0.7 * beat.accuracy;
      g.beginPath();
      g.arc(x, height - h - 4, 2, 0, Math.PI * 2);
      g.fill();
    }
  }
  g.globalAlpha = 1;
}

function seek(seconds) {
  const audio = $("audio");
  const t = Math.max(0, Math.min(seconds, state.result ? state.result.audio.duration : seconds));
  audio.currentTime = t;
  movePlayhead(t);
}

// Every bar gets its marker; its number is shown every 1, 2, 4, ... bars, whatever fits.
function labelStep(barPx, minPx) {
  let step = 1;
  while (barPx * step < minPx && step < 4096) step *= 2;
  return step;
}

function renderBars(bars) {
  const box = $("bars");
  box.textContent = "";
  const step = labelStep(averageBar(state.result) * state.pxPerSec, 30);
  const frag = document.createDocumentFragment();
  for (const bar of bars) {
    const el = document.createElement("div");
    el.className = "bar-marker" + ((bar.bar - 1) % step ? " quiet" : "");
    el.style.left = `${bar.timestamp * state.pxPerSec}px`;
    el.style.width = `${Math.max(bar.duration * state.pxPerSec - 2, 1)}px`;
    el.dataset.bar = String(bar.bar);
    el.dataset.time = String(bar.timestamp);
    el.title = `Bar ${bar.bar} · ${clock(bar.timestamp, true)} · ${bar.tempo.toFixed(1)} BPM`;
    const label = document.createElement("span");
    label.textContent = String(bar.bar);
    el.append(label);
    frag.append(el);
  }
  box.append(frag);
}

function renderChords(progression) {
  const box = $("chords");
  box.textContent = "";
  const frag = document.createDocumentFragment();
  for (const bar of progression) {
    const el = document.createElement("div");
    el.className = "chord";
    el.style.left = `${bar.timestamp * state.pxPerSec}px`;
    el.style.width = `${bar.duration * state.pxPerSec}px`;
    el.dataset.bar = String(bar.bar);
    const chords = bar.chords.length ? bar.chords : [bar.chord];
    const names = barNames(bar, "lead", 0);
    const numerals = bar.numerals || [];
    el.title = `Bar ${bar.bar}: ${names.join(" → ")}` +
      (numerals.some((n) => n) ? ` (${numerals.map((n) => n || "–").join(" → ")})` : "");
    chords.forEach((chord, i) => {
      const label = document.createElement("span");
      label.className = "chord-label";
      label.textContent = names[i];
      label.dataset.harte = chord;
      label.style.setProperty("--c", chordColour(chord));
      el.append(label);
    });
    frag.append(el);
  }
  box.append(frag);
}

// ---------------------------------------------------------------- overview / minimap
function renderOverview(r) {
  const duration = Math.max(r.audio.duration, 0.1);
  const pct = (t) => `${(100 * t / duration).toFixed(4)}%`;
  const bars = $("ov-bars");
  bars.textContent = "";
  const frag = document.createDocumentFragment();
  const width = $("overview").clientWidth || 1000;
  const step = labelStep(width * averageBar(r) / duration, 34);
  const phrase = labelStep(width * averageBar(r) / duration, 5);  // bar lines drawn darker
  r.chord_progression.forEach((bar, i) => {
    const el = document.createElement("div");
    el.className = "ov-bar" + ((bar.bar - 1) % Math.max(4, phrase) === 0 ? " phrase" : "");
    el.style.left = pct(bar.timestamp);
    el.style.width = pct(bar.duration);
    el.style.background = chordColour(bar.chord);
    el.dataset.bar = String(bar.bar);
    el.title = `Bar ${bar.bar}: ${barNames(bar, "lead", 0).join(" → ")}`;
    frag.append(el);
  });
  bars.append(frag);
  // repeated harmony: the chord sheet's lettered lines, as a band over the chord cells
  const sections = $("ov-sections");
  sections.textContent = "";
  for (const { bars: line, letter } of phraseLines(r.chord_progression)) {
    if (!letter) continue;
    const first = line[0], last = line[line.length - 1];
    const el = document.createElement("div");
    el.className = "ov-section";
    el.style.left = pct(first.timestamp);
    el.style.width = pct(last.timestamp + last.duration - first.timestamp);
    el.style.background = letterColour(letter);
    el.dataset.letter = letter;
    el.title = `Bars ${first.bar}–${last.bar}: line ${letter}`;
    sections.append(el);
  }
  const labels = $("ov-labels");
  labels.textContent = "";
  for (const d of r.downbeat_timeline) {
    if ((d.bar - 1) % step) continue;
    const el = document.createElement("span");
    el.style.left = pct(d.timestamp);
    el.textContent = String(d.bar);
    labels.append(el);
  }
  drawOverviewWave(r, width);
  updateWindow();
}

function drawOverviewWave(r, width) {
  const canvas = $("ov-wave");
  const ratio = window.devicePixelRatio || 1;
  const height = 39;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.fillStyle = "#6f7fa6";
  const duration = Math.max(r.audio.duration, 0.1);
  const p = state.peaks;
  // energy per pixel: the waveform's peak, or without audio the beats' onset strength
  const level = new Float32Array(width);
  if (p) {
    const per = p.mins.length / width;
    for (let x = 0; x < width; x++) {
      let m = 0;
      for (let b = Math.floor(x * per); b < Math.min(p.mins.length, Math.floor((x + 1) * per) + 1); b++) {
        m = Math.max(m, p.maxs[b], -p.mins[b]);
      }
      level[x] = m;
    }
  } else {
    for (const b of r.beat_transient_markers) {
      const x = Math.min(width - 1, Math.floor(b.beat_time / duration * width));
      level[x] = Math.max(level[x], b.transient_strength != null ? b.transient_strength : b.confidence * 0.5);
    }
  }
  const peak = Math.max(1e-6, ...level);
  for (let x = 0; x < width; x++) {
    const h = Math.max(1, (level[x] / peak) * (height - 2));
    g.fillRect(x, height - h, 1, h);
  }
}

function updateWindow() {
  const r = state.result;
  if (!r) return;
  const scroller = $("scroller");
  const total = Math.max(r.audio.duration, 0.1) * state.pxPerSec;
  const w = $("ov-window");
  const left = 100 * scroller.scrollLeft / total;
  const width = Math.min(100 - left, 100 * scroller.clientWidth / total);
  w.style.left = `${left}%`;
  w.style.width = `${width}%`;
  w.dataset.start = (scroller.scrollLeft / state.pxPerSec).toFixed(3);
  w.dataset.end = ((scroller.scrollLeft + scroller.clientWidth) / state.pxPerSec).toFixed(3);
}

function overviewTime(e) {
  const rect = $("overview").getBoundingClientRect();
  return Math.max(0, Math.min(1, (e.clientX - rect.left) / rect.width)) * state.result.audio.duration;
}

function centreOn(seconds) {
  const scroller = $("scroller");
  scroller.scrollLeft = Math.max(0, seconds * state.pxPerSec - scroller.clientWidth / 2);
}

function setupOverview() {
  const ov = $("overview");
  let dragging = null;
  ov.addEventListener("mousedown", (e) => {
    if (!state.result) return;
    e.preventDefault();
    dragging = { x: e.clientX, moved: false };
    centreOn(overviewTime(e));
  });
  window.addEventListener("mousemove", (e) => {
    if (!dragging) return;
    if (Math.abs(e.clientX - dragging.x) > 3) dragging.moved = true;
    centreOn(overviewTime(e));
  });
  window.addEventListener("mouseup", (e) => {
    if (!dragging) return;
    if (!dragging.moved) seek(overviewTime(e));  // a click also moves the playhead there
    dragging = null;
  });
}

// ---------------------------------------------------------------- chord sheet
// The progression in lines of SHEET_BARS_PER_LINE bars; a full line whose chords occur
// again elsewhere gets a letter (A, B, ... in order of first appearance), null otherwise.
function phraseLines(bars, per = SHEET_BARS_PER_LINE) {
  const lines = [];
  for (let i = 0; i < bars.length; i += per) lines.push({ bars: bars.slice(i, i + per), letter: null });
  const signature = (line) => line.map((b) => (b.chords.length ? b.chords : [b.chord]).join(" ")).join("|");
  const counts = new Map();
  for (const l of lines) counts.set(signature(l.bars), (counts.get(signature(l.bars)) || 0) + 1);
  const letters = new Map();
  for (const l of lines) {
    const sig = signature(l.bars);
    if (counts.get(sig) < 2 || l.bars.length !== per) continue;
    if (!letters.has(sig)) letters.set(sig, String.fromCharCode(65 + (letters.size % 26)));
    l.letter = letters.get(sig);
  }
  return lines;
}

const letterColour = (letter) => `hsl(${(letter.charCodeAt(0) - 65) * 47 % 360} 60% 80%)`;

function renderSheet() {
  const r = state.result;
  const sheet = $("sheet");
  sheet.textContent = "";
  $("tr-value").textContent = state.transpose > 0 ? `+${state.transpose}` : String(state.transpose);
  $("names-lead").classList.toggle("on", state.names === "lead");
  $("names-harte").classList.toggle("on", state.names === "harte");
  const key = keyOf(r);
  let keyText = r.key.label === "N" ? "no key" : (r.key.name || r.key.label);
  if (key && state.transpose) {
    const flats = keyUsesFlats((key.pc + state.transpose + 120) % 12, key.minor);
    keyText = `${(flats ? FLAT_NAMES : SHARP_NAMES)[(key.pc + state.transpose + 120) % 12]} ` +
      `${key.minor ? "minor" : "major"} (transposed ${state.transpose > 0 ? "+" : ""}${state.transpose})`;
  }
  $("sheet-head").textContent =
    `${r.filename} — ${keyText} · ${r.tempo.bpm.toFixed(0)} BPM · ${r.time_signature.label}`;
  const lines = phraseLines(r.chord_progression);
  const frag = document.createDocumentFragment();
  for (const { bars: line, letter } of lines) {
    const row = document.createElement("div");
    row.className = "sheet-line";
    const tag = document.createElement("span");
    tag.className = "sheet-tag";
    if (letter) {
      tag.textContent = letter;
      tag.dataset.letter = letter;
      row.dataset.repeat = letter;
      tag.style.background = letterColour(letter);
    }
    row.append(tag);
    let previous = null;
    for (const bar of line) {
      const cell = document.createElement("div");
      cell.className = "sheet-bar";
      cell.dataset.bar = String(bar.bar);
      const num = document.createElement("span");
      num.className = "sheet-num";
      num.textContent = String(bar.bar);
      const names = barNames(bar);
      const text = document.createElement("span");
      text.className = "sheet-chords";
      text.textContent = names.join("  ");
      if (previous === text.textContent) cell.classList.add("same");
      previous = text.textContent;
      cell.style.borderBottomColor = chordColour(bar.chord);
      cell.append(num, text);
      row.append(cell);
    }
    frag.append(row);
  }
  sheet.append(frag);
  highlightBar($("audio").currentTime || 0, true);
}

function setView(view) {
  state.view = view;
  $("map-view").hidden = view !== "map";
  $("sheet-view").hidden = view !== "sheet";
  $("tab-map").classList.toggle("on", view === "map");
  $("tab-sheet").classList.toggle("on", view === "sheet");
  $("tab-map").setAttribute("aria-selected", String(view === "map"));
  $("tab-sheet").setAttribute("aria-selected", String(view === "sheet"));
  if (view === "map") layoutMap();
}

function setupSheet() {
  $("tab-map").addEventListener("click", () => setView("map"));
  $("tab-sheet").addEventListener("click", () => setView("sheet"));
  $("names-lead").addEventListener("click", () => { state.names = "lead"; renderSheet(); });
  $("names-harte").addEventListener("click", () => { state.names = "harte"; renderSheet(); });
  $("tr-up").addEventListener("click", () => { state.transpose = Math.min(11, state.transpose + 1); renderSheet(); });
  $("tr-down").addEventListener("click", () => { state.transpose = Math.max(-11, state.transpose - 1); renderSheet(); });
  $("sheet-print").addEventListener("click", () => {
    if (state.view !== "sheet") setView("sheet");
    window.print();
  });
  const sheet = $("sheet");
  sheet.addEventListener("mousedown", (e) => {
    const cell = e.target.closest(".sheet-bar");
    if (!cell) return;
    e.preventDefault();
    beginDrag(Number(cell.dataset.bar), e.clientX, e.clientY);
  });
  sheet.addEventListener("mousemove", (e) => {
    const cell = e.target.closest(".sheet-bar");
    if (cell) moveDrag(Number(cell.dataset.bar), e.clientX, e.clientY);
  });
}

// ---------------------------------------------------------------- loops
function barAt(seconds) {
  const bars = state.result.downbeat_timeline;
  let lo = 0, hi = bars.length - 1, found = bars.length ? 1 : 0;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (bars[mid].timestamp <= seconds) { found = bars[mid].bar; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

function beginDrag(bar, x, y) {
  state.drag = { from: bar, to: bar, x, y, moved: false };
}

function moveDrag(bar, x, y) {
  const d = state.drag;
  if (!d) return;
  if (!d.moved && Math.hypot(x - d.x, y - d.y) < DRAG_PX) return;
  d.moved = true;
  d.to = bar;
  const a = Math.min(d.from, d.to), b = Math.max(d.from, d.to);
  setLoop(a, b, false);
}

function endDrag() {
  const d = state.drag;
  state.drag = null;
  if (!d) return;
  if (d.moved) {
    setLoop(Math.min(d.from, d.to), Math.max(d.from, d.to), true);
  } else if (d.from >= 1) {
    seek(state.result.downbeat_timeline[d.from - 1].timestamp);  // a click: go to that bar
  }
}

function setLoop(first, last, final) {
  const bars = state.result.downbeat_timeline;
  if (!bars.length || first < 1) return;
  const a = bars[first - 1], b = bars[Math.min(last, bars.length) - 1];
  state.loop = { first, last, start: a.timestamp, end: b.timestamp + b.duration };
  renderLoop();
  if (final) {
    const t = $("audio").currentTime;
    if (t < state.loop.start || t >= state.loop.end) seek(state.loop.start);
  }
}

function clearLoop() {
  state.loop = null;
  renderLoop();
}

function renderLoop() {
  const loop = state.loop;
  const r = state.result;
  $("loop-info").hidden = !loop;
  $("loop-span").hidden = !loop;
  $("ov-loop").hidden = !loop;
  for (const cell of $("sheet").querySelectorAll(".sheet-bar.looped")) cell.classList.remove("looped");
  if (!loop || !r) return;
  $("loop-text").textContent = loop.first === loop.last
    ? `looping bar ${loop.first}` : `looping bars ${loop.first}–${loop.last}`;
  $("loop-info").dataset.start = loop.start.toFixed(3);
  $("loop-info").dataset.end = loop.end.toFixed(3);
  const span = $("loop-span");
  span.style.left = `${loop.start * state.pxPerSec}px`;
  span.style.width = `${(loop.end - loop.start) * state.pxPerSec}px`;
  const d = Math.max(r.audio.duration, 0.1);
  $("ov-loop").style.left = `${100 * loop.start / d}%`;
  $("ov-loop").style.width = `${100 * (loop.end - loop.start) / d}%`;
  for (let b = loop.first; b <= loop.last; b++) {
    const cell = $("sheet").querySelector(`.sheet-bar[data-bar="${b}"]`);
    if (cell) cell.classList.add("looped");
  }
}

// Back to the loop's start once playback passes its end (checked every frame and on
// timeupdate, which still fires when the tab is in the background).
function keepInLoop() {
  const loop = state.loop;
  const audio = $("audio");
  if (!loop || audio.paused) return;
  if (audio.currentTime >= loop.end || audio.ended) {
    audio.currentTime = loop.start;
    const info = $("loop-info");
    info.dataset.wraps = String(Number(info.dataset.wraps || 0) + 1);
    if (audio.ended) audio.play();
  }
}

function setupMapInput() {
  const map = $("map");
  map.addEventListener("mousedown", (e) => {
    if (e.button !== 0 || !state.result) return;
    e.preventDefault();
    const rect = map.getBoundingClientRect();
    const t = (e.clientX - rect.left) / state.pxPerSec;
    const target = e.target.closest(".bar-marker, .chord");
    state.drag = { from: target ? Number(target.dataset.bar) : barAt(t), to: 0, x: e.clientX,
                   y: e.clientY, moved: false, time: t, onBar: !!target };
    state.drag.to = state.drag.from;
  });
  window.addEventListener("mousemove", (e) => {
    if (!state.drag || !state.result || state.view !== "map") return;
    const rect = map.getBoundingClientRect();
    moveDrag(barAt((e.clientX - rect.left) / state.pxPerSec), e.clientX, e.clientY);
  });
  window.addEventListener("mouseup", () => {
    const d = state.drag;
    if (!d) return;
    if (!d.moved && d.time != null && !d.onBar) {  // a click on the lane: go to that time
      state.drag = null;
      seek(d.time);
      return;
    }
    endDrag();
  });
  $("scroller").addEventListener("scroll", () => {
    cancelAnimationFrame(state.scrollRaf);
    state.scrollRaf = requestAnimationFrame(() => { drawVisibleWave(); updateWindow(); });
  });
  $("zoom").addEventListener("change", () => { setZoom(Number($("zoom").value)); $("zoom").blur(); });
  $("zoom-in").addEventListener("click", () => zoomStep(+1));
  $("zoom-out").addEventListener("click", () => zoomStep(-1));
  $("loop-clear").addEventListener("click", clearLoop);
}

// ---------------------------------------------------------------- grid editing
// Edits are applied to the server's result (never to an edited one), so they do not drift:
// {tempoExp: k (tempo x 2^k), beatsPerBar, downbeatAt (s), nudge (s)}.
function editGrid(orig, edits) {
  const duration = orig.audio.duration;
  let beats = orig.beat_transient_markers.map((b) => ({ ...b }));
  const k = edits.tempoExp || 0;
  for (let i = 0; i < k; i++) {  // double: a beat between every two
    const out = [];
    beats.forEach((b, j) => {
      out.push(b);
      const next = beats[j + 1];
      if (next) {
        out.push({ ...b, beat_time: (b.beat_time + next.beat_time) / 2,
                   confidence: Math.min(b.confidence, next.confidence),
                   transient_time: null, transient_strength: null, accuracy: null });
      }
    });
    beats = out;
  }
  const firstDown = orig.downbeat_timeline.length ? orig.downbeat_timeline[0].timestamp : null;
  let anchorTime = edits.downbeatAt != null ? edits.downbeatAt : firstDown;
  const nearest = (t) => {
    let best = 0;
    beats.forEach((b, j) => { if (Math.abs(b.beat_time - t) < Math.abs(beats[best].beat_time - t)) best = j; });
    return best;
  };
  for (let i = 0; i > k; i--) {  // halve: keep every other beat, keeping the downbeat
    const a = anchorTime == null ? 0 : nearest(anchorTime);
    beats = beats.filter((_, j) => (j - a) % 2 === 0);
  }
  const nudge = edits.nudge || 0;
  const r6 = (x) => Math.round(x * 1e6) / 1e6;
  beats = beats.map((b) => ({ ...b, beat_time: r6(b.beat_time + nudge),
                              transient_time: b.transient_time == null ? null : b.transient_time }))
    .filter((b) => b.beat_time >= 0 && b.beat_time <= duration);
  if (anchorTime != null) anchorTime += nudge;
  const n = edits.beatsPerBar || orig.time_signature.beats_per_bar;
  const a = anchorTime == null || !beats.length ? 0 : nearest(anchorTime);
  const first = ((a % n) + n) % n;  // the grid runs back from the anchor: earlier beats form bars too
  const markers = beats.map((b, j) => {
    const bar = j < first ? 0 : Math.floor((j - first) / n) + 1;
    const pos = j < first ? n - (first - j) + 1 : ((j - first) % n) + 1;
    return { ...b, beat_number: j + 1, bar, beat_position: Math.max(1, pos) };
  });
  const ibi = beats.length > 1 ? (beats[beats.length - 1].beat_time - beats[0].beat_time) / (beats.length - 1) : 0.5;
  const downbeats = [];
  for (let j = first; j < markers.length; j += n) {
    const t = markers[j].beat_time;
    const next = j + n < markers.length ? markers[j + n].beat_time
      : Math.min(duration, markers[markers.length - 1].beat_time + ibi);
    const count = Math.min(n, markers.length - j);
    const dur = Math.max(1e-3, next - t);
    downbeats.push({ bar: downbeats.length + 1, timestamp: t, confidence: markers[j].confidence,
                     beat_position: 1, duration: r6(dur), beats: count,
                     tempo: Math.round(6000 * count / dur) / 100 });
  }
  // chords per new bar, from the chord segments (the audio's, not moved by a nudge)
  const segs = orig.chord_segments;
  // spelled names and numerals of each segment, when the result has them (chord_details)
  const details = (orig.chord_details || []).length === segs.length ? orig.chord_details : null;
  const oldBars = orig.chord_progression;
  const progression = downbeats.map((d) => {
    const s = d.timestamp, e = d.timestamp + d.duration;
    const over = segs.map(([a0, b0, lab], i) => ({ lab, o: Math.min(b0, e) - Math.max(a0, s), i }))
      .filter((x) => x.o > 0);
    const main = over.reduce((m, x) => (!m || x.o > m.o ? x : m), null);
    const kept = over.filter((x) => x.o >= 0.3 * d.duration || x === main)
      .filter((x, i, all) => i === 0 || x.lab !== all[i - 1].lab).slice(0, 2);
    const chords = kept.map((x) => x.lab);
    const mid = s + d.duration / 2;
    const old = oldBars.find((b) => b.timestamp <= mid && mid < b.timestamp + b.duration) ||
      oldBars[oldBars.length - 1] || { confidence: 0, chroma_vector: new Array(12).fill(0) };
    return { bar: d.bar, timestamp: d.timestamp, duration: d.duration,
             chord: main ? main.lab : "N", confidence: old.confidence,
             chroma_vector: old.chroma_vector, chords: chords.length ? chords : ["N"],
             names: details && kept.length ? kept.map((x) => details[x.i].name) : [],
             numerals: details && kept.length ? kept.map((x) => details[x.i].numeral) : [] };
  });
  let changes = 0;
  progression.forEach((b, i) => { if (i && b.chord !== progression[i - 1].chord) changes++; });
  const full = downbeats.filter((d) => d.beats === n);
  const factor = Math.pow(2, k);
  const label = n === orig.time_signature.beats_per_bar ? orig.time_signature.label : `${n}/4`;
  const edited = {
    ...orig,
    tempo: { ...orig.tempo, bpm: Math.round(orig.tempo.bpm * factor * 100) / 100,
             alternative_bpm: orig.tempo.alternative_bpm == null ? null
               : Math.round(orig.tempo.alternative_bpm * factor * 100) / 100 },
    tempo_curve: orig.tempo_curve.map(([t, bpm]) => [r6(t + nudge), bpm * factor])
      .filter(([t]) => t >= 0 && t <= duration),
    time_signature: { beats_per_bar: n, label, confidence: 1.0 },
    meter_sections: downbeats.length ? [{ start: downbeats[0].timestamp, first_bar: 1,
      bars: downbeats.length, beats_per_bar: n, label, confidence: 1.0 }] : [],
    tempo_map: (k || nudge) && markers.length ? [{ start: markers[0].beat_time,
      end: markers[markers.length - 1].beat_time, bpm: Math.round(6000 / ibi) / 100,
      confidence: orig.grid_confidence == null ? 0 : orig.grid_confidence, first_beat: 1,
      beats: markers.length }] : orig.tempo_map,
    downbeat_timeline: downbeats,
    total_bars: downbeats.length,
    average_bar_duration: full.length ? full.reduce((s, d) => s + d.duration, 0) / full.length
      : orig.average_bar_duration,
    beat_transient_markers: markers,
    total_beats: markers.length,
    chord_progression: progression,
    total_chord_changes: changes,
    harmonic_rhythm: progression.length ? changes / progression.length : 0,
    // the edit is said in the warnings; provenance.settings stays what the analysis ran
    // with (the schema accepts only AnalysisSettings' fields there)
    warnings: [...orig.warnings, `grid edited by hand in the web page: ${describeEdits(edits)}`],
  };
  return edited;
}

function describeEdits(e) {
  const parts = [];
  if (e.tempoExp) parts.push(`tempo x${Math.pow(2, e.tempoExp)}`);
  if (e.beatsPerBar) parts.push(`${e.beatsPerBar} beats per bar`);
  if (e.downbeatAt != null) parts.push(`a downbeat at ${e.downbeatAt.toFixed(2)} s`);
  if (e.nudge) parts.push(`moved ${Math.round(e.nudge * 1000)} ms`);
  return parts.join(", ") || "none";
}

function applyEdit(change) {
  if (!state.original) return;
  const e = { tempoExp: 0, beatsPerBar: null, downbeatAt: null, nudge: 0, ...(state.edits || {}) };
  change(e);
  e.tempoExp = Math.max(-2, Math.min(2, e.tempoExp));
  state.edits = e;
  const edited = editGrid(state.original, e);
  render(edited);
  $("ge-status").textContent = `Edited: ${describeEdits(e)}. The JSON download carries this grid; ` +
    (state.file ? "re-decide on the server for chords and the other formats." : "open the file again to re-decide on the server.");
}

function setupGridEdit() {
  $("ge-first").addEventListener("click", () => applyEdit((e) => {
    e.downbeatAt = ($("audio").currentTime || 0) - (e.nudge || 0);
  }));
  $("ge-half").addEventListener("click", () => applyEdit((e) => { e.tempoExp -= 1; }));
  $("ge-double").addEventListener("click", () => applyEdit((e) => { e.tempoExp += 1; }));
  $("ge-meter").addEventListener("change", () => applyEdit((e) => { e.beatsPerBar = Number($("ge-meter").value); }));
  $("ge-left").addEventListener("click", () => applyEdit((e) => { e.nudge -= NUDGE_S; }));
  $("ge-right").addEventListener("click", () => applyEdit((e) => { e.nudge += NUDGE_S; }));
  $("ge-reset").addEventListener("click", () => {
    if (state.original) show(state.original);
  });
  $("ge-server").addEventListener("click", () => redecide().catch((err) => showError(err.message || String(err))));
}

// Ask the server to decide bars and chords again with the edited grid as overrides.
async function redecide() {
  const r = state.result;
  if (!state.file) {
    $("ge-status").textContent = "Open the audio file again (Choose a file) to re-decide on the server.";
    return;
  }
  const overrides = { bpm: r.tempo.bpm.toFixed(2), time_signature: r.time_signature.label };
  if (r.downbeat_timeline.length) overrides.first_downbeat = r.downbeat_timeline[0].timestamp.toFixed(3);
  $("ge-status").textContent = `Asking the server: ${Object.entries(overrides).map(([k, v]) => `${k}=${v}`).join(", ")}…`;
  const { job, result } = await runJob(state.file, overrides);
  $("status").hidden = true;
  state.jobId = job.id;
  show(result);
  $("ge-status").textContent = `Re-decided by the server with ${Object.entries(overrides).map(([k, v]) => `${k}=${v}`).join(", ")}.`;
}

// ---------------------------------------------------------------- downloads
async function renderDownloads(result) {
  const stem = result.filename.replace(/\.[^.]+$/, "") || "result";
  const json = $("dl-json");
  const more = $("dl-more");
  more.textContent = "";
  if (state.editedUrl) { URL.revokeObjectURL(state.editedUrl); state.editedUrl = null; }
  if (state.edits) {
    state.editedUrl = URL.createObjectURL(new Blob([JSON.stringify(result, null, 1)],
                                                   { type: "application/json" }));
    json.href = state.editedUrl;
    json.download = `${stem}.edited.songmap.json`;
    json.textContent = "Download JSON (edited grid)";
    return;  // other formats come from the server: re-decide there first
  }
  json.textContent = "Download JSON";
  json.download = `${stem}.songmap.json`;
  if (!state.jobId) {
    json.href = `/library/${state.libraryId}`;
    return;
  }
  json.href = `/jobs/${state.jobId}/result?download=true`;
  try {
    const info = await (await api("/version")).json();
    for (const fmt of info.analysis_settings.formats || []) {
      if (fmt === "json") continue;
      const a = document.createElement("a");
      a.className = "button secondary";
      a.href = `/jobs/${state.jobId}/result?format=${encodeURIComponent(fmt)}`;
      a.textContent = fmt;
      a.download = "";
      more.append(a);
    }
  } catch (e) { /* the JSON download is enough */ }
}

// ---------------------------------------------------------------- library
async function loadLibrary() {
  try {
    const q = $("lib-q").value.trim();
    const r = await api(`/library?limit=200&q=${encodeURIComponent(q)}`);
    if (!r.ok) return;
    const list = await r.json();
    const rows = $("lib-rows");
    rows.textContent = "";
    $("lib-count").textContent = `(${list.total})`;
    $("lib-empty").hidden = list.entries.length > 0;
    $("lib-empty").textContent = q ? "Nothing matches." : "Nothing analysed yet.";
    for (const e of list.entries) {
      const tr = document.createElement("tr");
      tr.className = "lib-entry";
      tr.dataset.id = e.id;
      tr.tabIndex = 0;
      const cells = [e.filename, e.bpm ? e.bpm.toFixed(1) : "—",
                     e.key === "N" ? "—" : `${e.key}${e.camelot ? " · " + e.camelot : ""}`,
                     clock(e.duration), new Date(e.analysed_at).toLocaleString()];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      const open = () => openStored(e.id).catch((err) => showError(err.message || String(err)));
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
      rows.append(tr);
    }
  } catch (e) { /* the library is a convenience; uploading still works */ }
}

async function openStored(id) {
  $("error").hidden = true;
  stopPlayback();
  const r = await api(`/library/${id}`);
  if (!r.ok) throw new Error(errorText(await r.text(), r.status));
  const result = await r.json();
  state.jobId = null;
  state.libraryId = id;
  state.file = null;
  state.peaks = null;
  if (state.audioUrl) { URL.revokeObjectURL(state.audioUrl); state.audioUrl = null; }
  $("audio").removeAttribute("src");
  show(result);
  $("ge-status").textContent = "Opened from the library: choose the file again to play it.";
}

function setupLibrary() {
  let timer = 0;
  $("lib-q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(loadLibrary, 200); });
  $("library").addEventListener("toggle", () => { if ($("library").open) loadLibrary(); });
  loadLibrary();
}

// ---------------------------------------------------------------- playback
function movePlayhead(t) {
  const x = t * state.pxPerSec;
  $("playhead").style.transform = `translateX(${x}px)`;
  $("playhead").dataset.time = t.toFixed(3);
  $("clock").textContent = clock(t, true);
  if (state.result) {
    $("ov-playhead").style.left = `${100 * t / Math.max(state.result.audio.duration, 0.1)}%`;
  }
  const scroller = $("scroller");
  if ($("follow").checked && !$("audio").paused && state.view === "map") {
    const view = scroller.clientWidth;
    if (x < scroller.scrollLeft || x > scroller.scrollLeft + view * 0.8) {
      scroller.scrollLeft = Math.max(0, x - view * 0.2);
    }
  }
  highlightBar(t);
}

function highlightBar(t, force = false) {
  const r = state.result;
  if (!r) return;
  const bar = barAt(t);
  if (bar === state.currentBar && !force) return;
  state.currentBar = bar;
  for (const el of document.querySelectorAll(".chord.current, .sheet-bar.playing")) {
    el.classList.remove("current", "playing");
  }
  const inBar = bar >= 1 && t < r.downbeat_timeline[bar - 1].timestamp + r.downbeat_timeline[bar - 1].duration;
  if (!inBar) return;
  const chord = $("chords").children[bar - 1];
  if (chord) chord.classList.add("current");
  const cell = $("sheet").querySelector(`.sheet-bar[data-bar="${bar}"]`);
  if (cell) {
    cell.classList.add("playing");
    if (state.view === "sheet" && !$("audio").paused) cell.scrollIntoView({ block: "nearest" });
  }
}

function tick() {
  keepInLoop();
  movePlayhead($("audio").currentTime);
  state.raf = requestAnimationFrame(tick);
}

function stopPlayback() {
  const audio = $("audio");
  if (!audio.paused) audio.pause();
}

function stepBars(n) {
  const r = state.result;
  if (!r || !r.downbeat_timeline.length) return;
  const t = $("audio").currentTime || 0;
  let bar = barAt(t + 0.05) + n;  // +0.05: a playhead just on a downbeat counts as in that bar
  bar = Math.max(1, Math.min(r.downbeat_timeline.length, bar));
  const at = r.downbeat_timeline[bar - 1].timestamp;
  seek(at);
  const scroller = $("scroller");
  const x = at * state.pxPerSec;
  if (x < scroller.scrollLeft || x > scroller.scrollLeft + scroller.clientWidth * 0.9) centreOn(at);
}

function setupPlayer() {
  const audio = $("audio");
  $("play").addEventListener("click", () => {
    if (audio.paused) audio.play().catch((e) => showError(`Cannot play this file here: ${e.message}`));
    else audio.pause();
  });
  audio.addEventListener("play", () => {
    $("play").innerHTML = "&#10074;&#10074;";
    $("play").setAttribute("aria-label", "Pause");
    cancelAnimationFrame(state.raf);
    state.raf = requestAnimationFrame(tick);
  });
  audio.addEventListener("pause", () => {
    $("play").innerHTML = "&#9654;";
    $("play").setAttribute("aria-label", "Play");
    cancelAnimationFrame(state.raf);
    movePlayhead(audio.currentTime);
  });
  audio.addEventListener("timeupdate", keepInLoop);
  audio.addEventListener("ended", keepInLoop);
  audio.addEventListener("seeked", () => movePlayhead(audio.currentTime));
  $("speed").addEventListener("change", () => {
    // slower without lower: keep the pitch where the browser can
    audio.preservesPitch = true;
    audio.mozPreservesPitch = true;
    audio.webkitPreservesPitch = true;
    audio.playbackRate = Number($("speed").value);
    $("speed").blur();  // the keys go back to the player
  });
  document.addEventListener("keydown", (e) => {
    if (!state.result || e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = e.target && e.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    if (e.code === "Space" && tag !== "BUTTON") {
      e.preventDefault();
      $("play").click();
    } else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault();
      stepBars((e.key === "ArrowRight" ? 1 : -1) * (e.shiftKey ? 4 : 1));
    } else if (e.key === "+" || e.key === "=") {
      e.preventDefault();
      zoomStep(+1);
    } else if (e.key === "-" || e.key === "_") {
      e.preventDefault();
      zoomStep(-1);
    } else if (e.key === "Escape") {
      clearLoop();
    }
  });
}

// ---------------------------------------------------------------- choosing a file
function setupInput() {
  const drop = $("drop");
  const start = (file) => {
    if (!file) return;
    analyse(file).catch((err) => showError(err.message || String(err)));
  };
  $("file").addEventListener("change", (e) => start(e.target.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    start(e.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); }
  });
  window.addEventListener("resize", () => {
    if (!state.result) return;
    layoutMap();
    renderOverview(state.result);
  });
}

setupPlayer();
setupInput();
setupOverview();
setupMapInput();
setupSheet();
setupGridEdit();
setupKeyForm();
setupLibrary();
