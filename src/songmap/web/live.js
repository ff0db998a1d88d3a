// songmap Live mode: the microphone (getUserMedia) streamed to the /live WebSocket as
// 32-bit float PCM; the events drawn as they arrive: the current chord large, bar.beat,
// BPM, key, a beat pulse, and a scrolling grid of the last bars with the next ones.
(function () {
  "use strict";
  const BARS_SHOWN = 8;     // bars heard, left of the current one
  const BARS_AHEAD = 3;     // empty bars to come, right of it
  const BLOCK = 4096;       // samples per message (~93 ms at 44.1 kHz)

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function buildPanel() {
    const panel = el("section", { id: "live", class: "live", hidden: "" });
    panel.innerHTML =
      '<div class="live-top"><button id="live-stop" type="button">Stop</button>' +
      '<span id="live-status" class="muted">Starting…</span></div>' +
      '<div class="live-now"><div id="live-chord" class="live-chord">–</div>' +
      '<div class="live-facts"><span id="live-pulse" class="live-pulse"></span>' +
      '<span>bar <b id="live-pos">0.0</b></span><span><b id="live-bpm">–</b> BPM</span>' +
      '<span>key <b id="live-key">–</b></span></div></div>' +
      '<div id="live-grid" class="live-grid" aria-label="Bars as they are heard"></div>';
    return panel;
  }

  const state = { ws: null, ctx: null, stream: null, node: null, bars: new Map(),
                  downbeats: new Map(),
                  bar: 0, beat: 0, chord: "N" };

  function status(text) { document.getElementById("live-status").textContent = text; }

  function drawGrid() {
    const grid = document.getElementById("live-grid");
    grid.textContent = "";
    const numbers = [...state.bars.keys()].sort((a, b) => a - b).slice(-BARS_SHOWN);
    for (const n of numbers) {
      const cell = el("div", { class: "live-bar" + (n === state.bar ? " now" : ""),
                                "data-bar": String(n) });
      cell.append(el("span", { class: "live-bar-n" }, String(n)),
                  el("span", { class: "live-bar-chord" }, state.bars.get(n) || ""));
      grid.append(cell);
    }
    const last = numbers.length ? numbers[numbers.length - 1] : 0;
    for (let k = 1; k <= BARS_AHEAD; k++) {
      const cell = el("div", { class: "live-bar ahead" });
      cell.append(el("span", { class: "live-bar-n" }, String(last + k)), el("span", {}, ""));
      grid.append(cell);
    }
  }

  function onEvent(e) {
    if (e.type === "beat" || e.type === "revise") {
      if (e.type === "beat") {
        state.bar = e.bar; state.beat = e.beat;
        const pulse = document.getElementById("live-pulse");
        pulse.classList.remove("on"); void pulse.offsetWidth; pulse.classList.add("on");
        pulse.classList.toggle("down", e.beat === 1);
      }
      document.getElementById("live-pos").textContent = state.bar + "." + state.beat;
    } else if (e.type === "downbeat") {
      if (!state.bars.has(e.bar)) state.bars.set(e.bar, state.chord === "N" ? "" : state.chord);
      state.downbeats.set(e.bar, e.time);
      while (state.bars.size > 64) {
        const first = state.bars.keys().next().value;
        state.bars.delete(first); state.downbeats.delete(first);
      }
      drawGrid();
    } else if (e.type === "chord") {
      state.chord = e.label;
      document.getElementById("live-chord").textContent = e.label === "N" ? "N.C." : e.label;
      // the chord belongs to the bar it starts in (the last downbeat not after it, or
      // the first bar for a chord heard before any downbeat); later bars hold it too
      let owner = null;
      for (const [n, t] of state.downbeats) if (t <= e.time + 0.1 && (owner === null || n > owner)) owner = n;
      if (owner === null && state.downbeats.size) owner = Math.min(...state.downbeats.keys());
      if (owner !== null) {
        for (const n of state.bars.keys()) if (n >= owner) state.bars.set(n, e.label);
        drawGrid();
      }
    } else if (e.type === "tempo") {
      document.getElementById("live-bpm").textContent = e.bpm.toFixed(1);
    } else if (e.type === "key") {
      document.getElementById("live-key").textContent = e.label;
    }
  }

  async function start() {
    const panel = document.getElementById("live");
    panel.hidden = false;
    state.bars.clear(); state.downbeats.clear(); drawGrid();
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({ audio: {
        echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    } catch (err) {
      status("No microphone: " + err.message); return;
    }
    state.ctx = new AudioContext();
    const rate = state.ctx.sampleRate;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    // a browser cannot set headers on a WebSocket: the key (app.js) goes in the query
    const key = apiKey ? `&key=${encodeURIComponent(apiKey)}` : "";
    state.ws = new WebSocket(
      `${proto}//${location.host}/live?rate=${rate}&channels=1&format=f32le${key}`);
    state.ws.binaryType = "arraybuffer";
    let opened = false;  // a refused handshake closes (1006) without ever opening
    state.ws.onmessage = (m) => { const e = JSON.parse(m.data); if (e.type !== "end") onEvent(e); };
    state.ws.onclose = (c) => {
      status(c.code === 1000 ? "Stopped." : !opened
        ? "The server refused the live stream (API key, or the page's address is not allowed)."
        : `Closed (${c.code}): ${c.reason || "connection lost"}`);
      stopAudio();
    };
    state.ws.onopen = () => {
      opened = true;
      status(`Listening (${rate} Hz)…`);
      const source = state.ctx.createMediaStreamSource(state.stream);
      // ScriptProcessor: deprecated but everywhere, and enough for 1 channel of blocks
      state.node = state.ctx.createScriptProcessor(BLOCK, 1, 1);
      state.node.onaudioprocess = (ev) => {
        if (state.ws && state.ws.readyState === WebSocket.OPEN) {
          state.ws.send(new Float32Array(ev.inputBuffer.getChannelData(0)).buffer);
        }
      };
      source.connect(state.node);
      state.node.connect(state.ctx.destination);
    };
  }

  function stopAudio() {
    if (state.node) { state.node.disconnect(); state.node = null; }
    if (state.stream) { state.stream.getTracks().forEach((t) => t.stop()); state.stream = null; }
    if (state.ctx) { state.ctx.close(); state.ctx = null; }
  }

  function stop() {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(new ArrayBuffer(0));
    stopAudio();
  }

  function install() {
    const main = document.querySelector("main");
    const button = el("button", { id: "live-start", type: "button", class: "primary" },
                      "Live: listen to the microphone");
    const bar = el("p", { class: "live-entry" });
    bar.append(button);
    main.prepend(bar);
    main.insertBefore(buildPanel(), bar.nextSibling);
    button.addEventListener("click", start);
    document.getElementById("live-stop").addEventListener("click", stop);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", install);
  else install();
})();
