// augsens explorer: draws the JSON embedded in the page (id "augsens-data") on <canvas> elements.
// No library and no network: the page must open from disk anywhere.  The data layout is documented in
// augsens/plot/explorer_data.py (study_payload).
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("augsens-data").textContent);
  const STUDIES = DATA.studies;
  const NAN_CODE = 65535;
  // viridis, 9 stops: perceptually uniform and readable in grey
  const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#843c39", "#7b4173"];
  const MEASURE_LABELS = {S1: "S1 (first-order index)", ST: "ST (total index)", shapley: "Shapley effect",
    S2: "S2 (second-order interaction)", shapley_interaction: "Shapley interaction (pairwise)",
    mean: "mean", var: "variance", cov: "coefficient of variation",
    rank_biserial: "rank-biserial r", point_biserial: "point-biserial r", p_value_by: "BY-adjusted p"};

  function fmt(v, digits) {
    return v === null || v === undefined || !isFinite(v) ? "n/a" : v.toFixed(digits === undefined ? 3 : digits);
  }

  function colour(t) {
    if (!isFinite(t)) return [220, 220, 220];
    const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
    const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const f = x - i;
    return [0, 1, 2].map((k) => Math.round(VIRIDIS[i][k] * (1 - f) + VIRIDIS[i + 1][k] * f));
  }

  const decoded = new Map();
  function decode(enc) {
    // uint16 codes (little-endian, base64) over [lo, hi]; 65535 = NaN
    if (decoded.has(enc)) return decoded.get(enc);
    const bytes = Uint8Array.from(atob(enc.data), (c) => c.charCodeAt(0));
    const view = new DataView(bytes.buffer);
    const n = bytes.length / 2;
    const out = new Float64Array(n);
    const scale = enc.hi > enc.lo ? (enc.hi - enc.lo) / (NAN_CODE - 1) : 1;
    for (let i = 0; i < n; i++) {
      const c = view.getUint16(2 * i, true);
      out[i] = c === NAN_CODE ? NaN : enc.lo + c * scale;
    }
    decoded.set(enc, out);
    return out;
  }

  function fill(select, items, keep) {
    // items: [[value, label]]; keeps the current choice when it is still offered
    const before = keep !== undefined ? keep : select.value;
    select.innerHTML = "";
    for (const [value, label] of items) {
      const o = document.createElement("option");
      o.value = value;
      o.textContent = label;
      select.appendChild(o);
    }
    if (items.some((it) => String(it[0]) === String(before))) select.value = before;
  }

  // ---- depth profiles ---------------------------------------------------------------------------
  function drawProfile(box) {
    const study = STUDIES[Number(box.dataset.study)];
    const measure = box.querySelector(".profile-measure").value;
    const p = study.profiles[measure];
    const canvas = box.querySelector("canvas");
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height, L = 60, R = 20, T = 15, B = 70;
    ctx.clearRect(0, 0, W, H);
    let lo = 0, hi = 0.1;
    p.value.forEach((row, i) => row.forEach((v, j) => {
      const c = p.conf[i] ? p.conf[i][j] || 0 : 0;
      if (v !== null) { lo = Math.min(lo, v - c); hi = Math.max(hi, v + c); }
    }));
    const n = p.checkpoints.length;
    const xOf = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    const yOf = (v) => T + ((hi - v) * (H - T - B)) / (hi - lo);
    ctx.strokeStyle = "#bbb"; ctx.fillStyle = "#333"; ctx.font = "12px sans-serif";
    ctx.textAlign = "right";
    for (let k = 0; k <= 5; k++) {
      const v = lo + ((hi - lo) * k) / 5;
      ctx.beginPath(); ctx.moveTo(L, yOf(v)); ctx.lineTo(W - R, yOf(v)); ctx.stroke();
      ctx.fillText(v.toFixed(2).replace(/^-(0\.00)$/, "$1"), L - 6, yOf(v) + 4);
    }
    p.checkpoints.forEach((c, i) => {
      ctx.save(); ctx.translate(xOf(i), H - B + 12); ctx.rotate(-Math.PI / 6);
      ctx.fillText(c, 0, 0); ctx.restore();
    });
    p.factors.forEach((f, j) => {
      const col = PALETTE[j % PALETTE.length];
      const pts = p.value.map((row, i) => [i, row[j], p.conf[i] ? p.conf[i][j] : null])
        .filter((t) => t[1] !== null);
      if (pts.some((t) => t[2] !== null)) {
        ctx.beginPath();
        pts.forEach(([i, v, c], k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, xOf(i), yOf(v + (c || 0))));
        pts.slice().reverse().forEach(([i, v, c]) => ctx.lineTo(xOf(i), yOf(v - (c || 0))));
        ctx.closePath(); ctx.globalAlpha = 0.15; ctx.fillStyle = col; ctx.fill(); ctx.globalAlpha = 1;
      }
      ctx.strokeStyle = col; ctx.fillStyle = col; ctx.lineWidth = 2; ctx.beginPath();
      pts.forEach(([i, v], k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, xOf(i), yOf(v)));
      ctx.stroke(); ctx.lineWidth = 1;
      pts.forEach(([i, v]) => { ctx.beginPath(); ctx.arc(xOf(i), yOf(v), 3, 0, 2 * Math.PI); ctx.fill(); });
    });
    box.querySelector(".legend").innerHTML = p.factors.map((f, j) =>
      `<span><i style="background:${PALETTE[j % PALETTE.length]}"></i>${f}</span>`).join(" ");
    canvas.onmousemove = (ev) => {
      const x = (ev.offsetX * canvas.width) / canvas.clientWidth;
      let best = 0;
      for (let i = 1; i < n; i++) if (Math.abs(xOf(i) - x) < Math.abs(xOf(best) - x)) best = i;
      const parts = p.factors.map((f, j) => {
        const c = p.conf[best] ? p.conf[best][j] : null;
        return `${f} ${fmt(p.value[best][j])}` + (c !== null && c !== undefined ? ` ± ${fmt(c)}` : "");
      });
      box.querySelector(".hover-readout").textContent = `${p.checkpoints[best]}: ${parts.join(", ")}`;
    };
  }

  function setupProfiles() {
    document.querySelectorAll(".profile").forEach((box) => {
      const study = STUDIES[Number(box.dataset.study)];
      const sel = box.querySelector(".profile-measure");
      const measures = Object.keys(study.profiles);
      fill(sel, measures.map((m) => [m, MEASURE_LABELS[m] || m]), measures.includes("ST") ? "ST" : measures[0]);
      sel.addEventListener("change", () => drawProfile(box));
      drawProfile(box);
    });
  }

  // ---- map viewer -------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const state = {};

  function current() {
    const study = STUDIES[state.study];
    const cp = study.maps[state.checkpoint];
    const enc = cp.measures[state.measure][state.factor];
    return { study, cp, enc };
  }

  function refreshChoices() {
    const study = STUDIES[state.study];
    const cps = study.checkpoints.filter((c) => Object.keys(study.maps[c].measures).length);
    fill($("sel-checkpoint"), cps.map((c) => [c, c]), state.checkpoint);
    state.checkpoint = $("sel-checkpoint").value;
    const cp = study.maps[state.checkpoint];
    const measures = Object.keys(cp.measures);
    fill($("sel-measure"), measures.map((m) => [m, MEASURE_LABELS[m] || m]),
      measures.includes(state.measure) ? state.measure : measures[0]);
    state.measure = $("sel-measure").value;
    const labels = Object.keys(cp.measures[state.measure]);
    fill($("sel-factor"), labels.map((f) => [f, f === "" ? "(no factor)" : f]), state.factor);
    state.factor = $("sel-factor").value;
    const chSel = $("sel-channel");
    chSel.parentElement.style.display = cp.kind === "channel" ? "" : "none";
    fill(chSel, cp.channels.map((c, i) => [i, `ch ${c}`]), state.channel);
    state.channel = cp.kind === "channel" ? Number(chSel.value) : 0;
  }

  function layout(cp) {
    if (cp.kind === "channel") return { h: cp.shape[1], w: cp.shape[2] };
    if (cp.kind === "sequence") return { h: cp.shape[0], w: cp.shape[1] };  // channels x time
    const w = Math.ceil(Math.sqrt(cp.shape[0]));
    return { h: Math.ceil(cp.shape[0] / w), w };
  }

  function drawMap() {
    const { study, cp, enc } = current();
    const values = decode(enc);
    const { h, w } = layout(cp);
    const scale = Math.max(1, Math.floor(420 / Math.max(h, w)));
    // a channel x time map is wide and flat: its rows are stretched to a readable height
    const yscale = cp.kind === "sequence" ? Math.max(scale, Math.floor(240 / h)) : scale;
    const canvas = $("map");
    canvas.width = w * scale; canvas.height = h * yscale;
    const off = document.createElement("canvas");
    off.width = w; off.height = h;
    const octx = off.getContext("2d");
    const img = octx.createImageData(w, h);
    const base = cp.kind === "channel" ? state.channel * h * w : 0;
    const count = cp.kind === "unit" ? cp.shape[0] : h * w;  // unit grids end in blank cells
    const span = enc.vmax > enc.vmin ? enc.vmax - enc.vmin : 1;
    for (let k = 0; k < h * w; k++) {
      const rgb = k < count ? colour((values[base + k] - enc.vmin) / span) : [255, 255, 255];
      img.data.set([...rgb, 255], 4 * k);
    }
    octx.putImageData(img, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, w * scale, h * yscale);
    canvas.dataset.key = [study.name, state.checkpoint, state.measure, state.factor, state.channel].join("|");
    $("map-range").innerHTML = `<span>${fmt(enc.vmax)}</span><span>${fmt(enc.vmin)}</span>`;
    $("map-scale").textContent = `Colour scale ${fmt(enc.vmin)} – ${fmt(enc.vmax)} (values beyond it clipped); ` +
      `values of this ${state.measure} map over all its channels: ${fmt(enc.lo)} – ${fmt(enc.hi)}.`;
    $("map-note").textContent = cp.note ? `${state.checkpoint}: ${cp.note}.` : "";
    canvas.onmousemove = (ev) => {
      const x = Math.floor((ev.offsetX * canvas.width) / canvas.clientWidth / scale);
      const y = Math.floor((ev.offsetY * canvas.height) / canvas.clientHeight / yscale);
      const k = y * w + x;
      const where = cp.kind === "channel"
        ? `ch ${cp.channels[state.channel]}, y ${y}, x ${x}` + (cp.pool > 1 ? ` (block of ${cp.pool}×${cp.pool})` : "")
        : cp.kind === "sequence"
          ? `ch ${cp.channels[y]}, t ${x * cp.pool}` + (cp.pool > 1 ? `–${x * cp.pool + cp.pool - 1}` : "")
          : `unit ${k}`;
      $("map-readout").textContent = k < count
        ? `${state.checkpoint} · ${state.measure} · ${state.factor || "-"} · ${where}: ${fmt(values[base + k], 4)}`
        : "";
    };
    drawTable();
  }

  function drawColorbar() {
    const c = $("colorbar"), ctx = c.getContext("2d");
    for (let y = 0; y < c.height; y++) {
      const [r, g, b] = colour(1 - y / (c.height - 1));
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(0, y, c.width, 1);
    }
  }

  // ---- channel table ----------------------------------------------------------------------------
  const sortState = { column: null, descending: true };

  function drawTable() {
    const { study, cp } = current();
    const tables = study.tables[state.checkpoint] || {};
    const measure = tables[state.measure] ? state.measure : Object.keys(tables)[0];
    const table = $("channel-table");
    if (!measure) { table.innerHTML = ""; $("channel-summary").textContent = ""; return; }
    $("table-measure").textContent = MEASURE_LABELS[measure] || measure;
    const cols = Object.keys(tables[measure]);
    const factor = cols.includes(state.factor) ? state.factor : cols[0];
    const column = cols.includes(sortState.column) ? sortState.column : factor;
    const n = tables[measure][cols[0]].value.length;
    const mapped = new Map(cp.channels.map((c, i) => [c, i]));
    const rows = Array.from({ length: n }, (_, i) => i);
    const key = (i) => column === "#" ? i : tables[measure][column].value[i];
    rows.sort((a, b) => {
      const va = key(a), vb = key(b);
      if (va === null) return 1;
      if (vb === null) return -1;
      return sortState.descending ? vb - va : va - vb;
    });
    const unit = cp.kind === "unit" ? "unit" : "channel";
    const head = [`<th data-col="#">${unit}</th>`].concat(cols.map((f) =>
      `<th data-col="${f}" class="${f === column ? "sorted" : ""}">${f}${f === column ? (sortState.descending ? " ▼" : " ▲") : ""}</th>`));
    const body = rows.map((i) => {
      const ch = i;
      const cells = cols.map((f) => {
        const v = tables[measure][f].value[i], c = tables[measure][f].conf ? tables[measure][f].conf[i] : null;
        return `<td title="${c !== null ? "± " + fmt(c) : ""}">${fmt(v)}</td>`;
      });
      const cls = mapped.has(ch) ? "mapped" + (cp.channels[state.channel] === ch ? " current" : "") : "";
      return `<tr data-ch="${ch}" class="${cls}"><td>${ch}${mapped.has(ch) || cp.kind !== "channel" ? "" : " (no map)"}</td>${cells.join("")}</tr>`;
    });
    table.innerHTML = `<thead><tr>${head.join("")}</tr></thead><tbody>${body.join("")}</tbody>`;
    const vals = tables[measure][factor].value;
    const ranked = Array.from({ length: n }, (_, i) => i).filter((i) => vals[i] !== null)
      .sort((a, b) => vals[b] - vals[a]);
    const list = (ids) => ids.map((i) => `${unit} ${i} (${fmt(vals[i])})`).join(", ");
    const k = Math.min(5, Math.floor(ranked.length / 2));
    $("channel-summary").textContent = k
      ? `${factor} — most sensitive: ${list(ranked.slice(0, k))}; least: ${list(ranked.slice(-k).reverse())}.`
      : "";
    table.querySelectorAll("th").forEach((th) => th.addEventListener("click", () => {
      const col = th.dataset.col;
      sortState.descending = sortState.column === col ? !sortState.descending : col !== "#";
      sortState.column = col;
      drawTable();
    }));
    table.querySelectorAll("tr.mapped").forEach((tr) => tr.addEventListener("click", () => {
      state.channel = mapped.get(Number(tr.dataset.ch));
      $("sel-channel").value = String(state.channel);
      drawMap();
    }));
  }

  function mostSensitiveMapped() {
    // the mapped channel with the largest aggregated index for the chosen factor: a telling first view
    const { study, cp } = current();
    const t = (study.tables[state.checkpoint] || {})[state.measure];
    if (cp.kind !== "channel" || !t || !t[state.factor]) return state.channel;
    const v = t[state.factor].value;
    let best = 0;
    cp.channels.forEach((c, i) => { if ((v[c] ?? -Infinity) > (v[cp.channels[best]] ?? -Infinity)) best = i; });
    return best;
  }

  function setupViewer() {
    const studies = STUDIES.map((s, i) => [i, s.name]).filter(([i]) =>
      STUDIES[i].checkpoints.some((c) => Object.keys(STUDIES[i].maps[c].measures).length));
    if (!studies.length) { $("viewer").textContent = "No maps in these results."; return; }
    fill($("sel-study"), studies);
    Object.assign(state, { study: Number($("sel-study").value), checkpoint: "", measure: "ST", factor: "", channel: 0 });
    const on = (id, fn) => $(id).addEventListener("change", () => { fn($(id).value); refreshChoices(); drawMap(); });
    on("sel-study", (v) => { state.study = Number(v); });
    on("sel-checkpoint", (v) => { state.checkpoint = v; });
    on("sel-measure", (v) => { state.measure = v; });
    on("sel-factor", (v) => { state.factor = v; sortState.column = null; });
    on("sel-channel", (v) => { state.channel = Number(v); });
    drawColorbar();
    refreshChoices();
    state.channel = mostSensitiveMapped();
    $("sel-channel").value = String(state.channel);
    drawMap();
  }

  setupProfiles();
  setupViewer();
  window.augsensExplorer = { state, ready: true };
})();
