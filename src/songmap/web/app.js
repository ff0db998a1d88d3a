// songmap's page: upload a file as a job, follow its progress, draw the track's map.
// Plain JS, no build step, nothing loaded from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);
const MIN_BAR_PX = 64;      // bars never get narrower than this: the map scrolls instead
const MAX_CANVAS_PX = 32000; // browsers refuse wider canvases
const POLL_MS = 300;

const state = { result: null, jobId: null, pxPerSec: 1, peaks: null, audioUrl: null, raf: 0 };

// ---------------------------------------------------------------- formatting
function chordName(harte) {
  if (!harte || harte === "N") return "N.C.";
  const [root, rest = "maj"] = harte.split(":");
  const [quality, bass] = rest.split("/");
  const names = { maj: "", min: "m", "7": "7", maj7: "maj7", min7: "m7", dim: "dim",
                  aug: "aug", sus4: "sus4", sus2: "sus2", hdim7: "m7b5", dim7: "dim7" };
  const q = quality in names ? names[quality] : quality;
  return root + q + (bass ? "/" + bass : "");
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

// ---------------------------------------------------------------- upload and job
function uploadJob(file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/jobs");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) showStatus("Uploading…", e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status === 202) resolve(JSON.parse(xhr.responseText));
      else {
        const retry = xhr.getResponseHeader("Retry-After");
        const err = new Error(errorText(xhr.responseText, xhr.status));
        err.retryAfter = xhr.status === 503 && retry ? Number(retry) : null;
        reject(err);
      }
    };
    xhr.onerror = () => reject(new Error("The upload failed: is the server running?"));
    const form = new FormData();
    form.append("file", file, file.name);
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
    const r = await fetch(`/jobs/${job.id}`);
    if (!r.ok) throw new Error(errorText(await r.text(), r.status));
    job = await r.json();
  }
}

async function analyse(file) {
  $("error").hidden = true;
  $("result").hidden = true;
  stopPlayback();
  showStatus("Uploading…", 0);
  const peaksPromise = computePeaks(file);  // decodes in the browser while the server works
  let job;
  for (let attempt = 0; ; attempt++) {
    try {
      job = await uploadJob(file);
      break;
    } catch (err) {
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
  const r = await fetch(`/jobs/${job.id}/result`);
  if (!r.ok) throw new Error(errorText(await r.text(), r.status));
  const result = await r.json();
  state.jobId = job.id;
  state.peaks = await peaksPromise;
  if (state.audioUrl) URL.revokeObjectURL(state.audioUrl);
  state.audioUrl = URL.createObjectURL(file);
  $("audio").src = state.audioUrl;
  render(result);
  $("status").hidden = true;
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
    const buckets = 4000;
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

// ---------------------------------------------------------------- the map
function render(result) {
  state.result = result;
  $("result").hidden = false;
  renderHeader(result);
  const duration = Math.max(result.audio.duration, 0.1);
  const bars = result.downbeat_timeline;
  const avgBar = bars.length ? duration / Math.max(bars.length, 1) : 2;
  const fit = $("scroller").clientWidth - 2;
  let width = Math.max(fit, Math.ceil(duration / avgBar * MIN_BAR_PX));
  width = Math.min(width, MAX_CANVAS_PX);
  state.pxPerSec = width / duration;
  const map = $("map");
  map.style.width = `${width}px`;
  map.dataset.totalBars = String(result.total_bars);
  drawWave(width);
  renderBars(bars);
  renderChords(result.chord_progression);
  renderDownloads(result);
  movePlayhead($("audio").currentTime || 0);  // a resize redraws where playback is
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

function drawWave(width) {
  const canvas = $("wave");
  const ratio = window.devicePixelRatio || 1;
  const height = 120;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const mid = height / 2;
  const css = getComputedStyle(document.documentElement);
  // waveform
  g.fillStyle = css.getPropertyValue("--wave").trim() || "#9aa8c7";
  const p = state.peaks;
  if (p) {
    const n = p.mins.length;
    const pxPerBucket = (p.duration * state.pxPerSec) / n;
    for (let x = 0; x < width; x++) {
      const b0 = Math.floor(x / pxPerBucket), b1 = Math.max(b0 + 1, Math.floor((x + 1) / pxPerBucket));
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
  for (const beat of state.result.beat_transient_markers) {
    const x = Math.round(beat.beat_time * state.pxPerSec) + 0.5;
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

function renderBars(bars) {
  const box = $("bars");
  box.textContent = "";
  for (const bar of bars) {
    const el = document.createElement("div");
    el.className = "bar-marker";
    el.style.left = `${bar.timestamp * state.pxPerSec}px`;
    el.style.width = `${Math.max(bar.duration * state.pxPerSec - 2, 1)}px`;
    el.dataset.bar = String(bar.bar);
    el.dataset.time = String(bar.timestamp);
    el.title = `Bar ${bar.bar} · ${clock(bar.timestamp, true)} · ${bar.tempo.toFixed(1)} BPM`;
    const label = document.createElement("span");
    label.textContent = String(bar.bar);
    el.append(label);
    el.addEventListener("click", (e) => { e.stopPropagation(); seek(bar.timestamp); });
    box.append(el);
  }
}

function renderChords(progression) {
  const box = $("chords");
  box.textContent = "";
  for (const bar of progression) {
    const el = document.createElement("div");
    el.className = "chord";
    el.style.left = `${bar.timestamp * state.pxPerSec}px`;
    el.style.width = `${bar.duration * state.pxPerSec}px`;
    el.dataset.bar = String(bar.bar);
    const chords = bar.chords.length ? bar.chords : [bar.chord];
    // names spelled in the key (Db, not C#, in flat keys) when the result has them
    const names = (bar.names && bar.names.length === chords.length) ? bar.names : chords.map(chordName);
    const numerals = bar.numerals || [];
    el.title = `Bar ${bar.bar}: ${names.join(" → ")}` +
      (numerals.some((n) => n) ? ` (${numerals.map((n) => n || "–").join(" → ")})` : "");
    chords.forEach((chord, i) => {
      const label = document.createElement("span");
      label.className = "chord-label";
      label.textContent = names[i];
      label.dataset.harte = chord;
      el.append(label);
    });
    el.addEventListener("click", (e) => { e.stopPropagation(); seek(bar.timestamp); });
    box.append(el);
  }
}

async function renderDownloads(result) {
  const stem = result.filename.replace(/\.[^.]+$/, "") || "result";
  const json = $("dl-json");
  json.href = `/jobs/${state.jobId}/result?download=true`;
  json.download = `${stem}.songmap.json`;
  const more = $("dl-more");
  more.textContent = "";
  try {
    const info = await (await fetch("/version")).json();
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

// ---------------------------------------------------------------- playback
function movePlayhead(t) {
  const x = t * state.pxPerSec;
  $("playhead").style.transform = `translateX(${x}px)`;
  $("playhead").dataset.time = t.toFixed(3);
  $("clock").textContent = clock(t, true);
  const scroller = $("scroller");
  if ($("follow").checked && !$("audio").paused) {
    const view = scroller.clientWidth;
    if (x < scroller.scrollLeft || x > scroller.scrollLeft + view * 0.8) {
      scroller.scrollLeft = Math.max(0, x - view * 0.2);
    }
  }
  highlightChord(t);
}

function highlightChord(t) {
  const r = state.result;
  if (!r) return;
  const cells = $("chords").children;
  for (let i = 0; i < cells.length; i++) {
    const bar = r.chord_progression[i];
    const on = t >= bar.timestamp && t < bar.timestamp + bar.duration;
    cells[i].classList.toggle("current", on);
  }
}

function tick() {
  movePlayhead($("audio").currentTime);
  state.raf = requestAnimationFrame(tick);
}

function stopPlayback() {
  const audio = $("audio");
  if (!audio.paused) audio.pause();
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
  audio.addEventListener("seeked", () => movePlayhead(audio.currentTime));
  $("map").addEventListener("click", (e) => {
    const rect = $("map").getBoundingClientRect();
    seek((e.clientX - rect.left) / state.pxPerSec);
  });
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && state.result && e.target === document.body) {
      e.preventDefault();
      $("play").click();
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
  window.addEventListener("resize", () => { if (state.result) render(state.result); });
}

setupPlayer();
setupInput();
