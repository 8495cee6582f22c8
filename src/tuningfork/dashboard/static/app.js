// tuningfork dashboard: plain JavaScript, no framework, no build step.
// Every piece of data goes into the page through textContent (never innerHTML), so a
// parameter value such as "<img onerror=...>" is shown as text.
"use strict";

(function () {
  const STATES = ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING", "PAUSED"];
  const POLL_MS = 1000;
  const LIST_POLL_MS = 3000;
  const PLOT_REFRESH_MS = 5000;
  // drawn in the population card of a PBT / PB2 study, not as tabs
  const POPULATION_KINDS = ["population", "schedule"];

  // a marker set once per page load: tests check that live updates do not reload the page
  window.__tfLoadId = Math.random().toString(36).slice(2);

  const state = {
    view: null, // "list" | "study"
    study: null, // the study's name
    version: 0, // the storage version of the trials we hold
    trials: new Map(), // number -> row
    rows: new Map(), // number -> <tr>
    params: [], // parameter names, in order of first appearance
    nValues: 1,
    sortKey: "number",
    sortDir: 1,
    shownStates: new Set(STATES),
    selected: null, // the trial number shown in the detail panel
    summaryLoaded: false,
    plotKinds: null,
    plotKind: null,
    plotAt: 0,
    plotVersion: -1,
    population: null, // the study's population summary (PBT / PB2), or null
    populationAt: 0,
    timer: null,
    generation: 0, // bumped on each navigation: stale responses are dropped
  };

  // -- helpers -----------------------------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }

  /** An element with properties (className, textContent, dataset...) and children. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function fmt(value) {
    if (value === null || value === undefined) return "-";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return String(value);
      return String(Number(value.toPrecision(6)));
    }
    if (Array.isArray(value)) return "(" + value.map(fmt).join(", ") + ")";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function fmtSeconds(value) {
    if (value === null || value === undefined) return "-";
    if (value < 60) return value.toPrecision(3) + " s";
    const minutes = Math.floor(value / 60);
    const hours = Math.floor(minutes / 60);
    return hours ? `${hours}h ${String(minutes % 60).padStart(2, "0")}m` : `${minutes}m ${String(Math.round(value % 60)).padStart(2, "0")}s`;
  }

  function fmtTime(stamp) {
    if (!stamp) return "-";
    return new Date(stamp * 1000).toLocaleString();
  }

  function api(path) {
    return "/api" + path;
  }

  function studyPath(name) {
    return "/studies/" + encodeURIComponent(name);
  }

  /** GET a JSON document; rejects with the server's message on an error status. */
  async function getJSON(path) {
    const response = await fetch(api(path), { headers: { Accept: "application/json" } });
    let doc = null;
    try {
      doc = await response.json();
    } catch (error) {
      doc = null;
    }
    if (!response.ok) {
      const error = new Error((doc && doc.error) || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return doc;
  }

  function showError(message) {
    const banner = $("error");
    banner.textContent = message || "";
    banner.hidden = !message;
    $("live").classList.toggle("stale", Boolean(message));
  }

  function stateBadge(name) {
    return el("span", { className: `state state-${name}`, textContent: name });
  }

  // -- routing -----------------------------------------------------------------------------

  function route() {
    const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
    clearTimeout(state.timer);
    state.generation += 1;
    const match = /^study\/(.+?)(?:\/trial\/(\d+))?$/.exec(hash);
    if (match) openStudy(match[1], match[2] === undefined ? null : Number(match[2]));
    else openList();
  }

  function studyHash(name, number) {
    const base = "#/study/" + encodeURIComponent(name);
    return number === null || number === undefined ? base : `${base}/trial/${number}`;
  }

  // -- the list of studies -----------------------------------------------------------------

  function openList() {
    state.view = "list";
    state.study = null;
    $("study-view").hidden = true;
    $("studies-view").hidden = false;
    $("crumb").textContent = "";
    document.title = "tuningfork dashboard";
    pollList(state.generation);
  }

  async function pollList(generation) {
    try {
      const doc = await getJSON("/studies");
      if (generation !== state.generation) return;
      renderStudies(doc.studies);
      showError("");
    } catch (error) {
      if (generation !== state.generation) return;
      showError(error.message);
    }
    state.timer = setTimeout(() => pollList(generation), LIST_POLL_MS);
  }

  function renderStudies(studies) {
    const body = $("studies-table").tBodies[0];
    clear(body);
    $("no-studies").hidden = studies.length > 0;
    for (const study of studies) {
      const link = el("a", { href: studyHash(study.name), textContent: study.name });
      const counts = study.counts;
      body.append(
        el(
          "tr",
          { dataset: { study: study.name } },
          el("td", {}, link),
          el("td", { textContent: study.directions.join(", ") }),
          el("td", { className: "num", textContent: String(study.n_trials) }),
          ...STATES.map((s) => el("td", { className: "num", textContent: String(counts[s] || 0) })),
          el("td", { className: "num", textContent: fmt(study.best_value) }),
          el("td", { textContent: fmtTime(study.last_activity) }),
        ),
      );
    }
  }

  // -- one study ---------------------------------------------------------------------------

  function openStudy(name, trialNumber) {
    const sameStudy = state.view === "study" && state.study === name;
    state.view = "study";
    $("studies-view").hidden = true;
    $("study-view").hidden = false;
    $("crumb").textContent = "/ " + name;
    document.title = name + " - tuningfork";
    if (!sameStudy) resetStudy(name);
    selectTrial(trialNumber);
    pollStudy(state.generation);
  }

  function resetStudy(name) {
    state.study = name;
    state.summaryLoaded = false;
    state.version = 0;
    state.trials = new Map();
    state.rows = new Map();
    state.params = [];
    state.nValues = 1;
    state.plotKind = null;
    state.plotVersion = -1;
    resetPopulation();
    $("study-name").textContent = name;
    clear($("trials-table").tBodies[0]);
    clear($("best-body"));
    clear($("workers-body"));
    renderFilter();
    renderHeader();
    loadPlotTabs();
  }

  async function pollStudy(generation) {
    const name = state.study;
    try {
      const doc = await getJSON(`${studyPath(name)}/trials?since=${state.version}`);
      if (generation !== state.generation) return;
      const changed = applyTrials(doc);
      if (changed || !state.summaryLoaded) await refreshSummary(name, generation);
      if (changed) refreshAfterChange(changed);
      showError("");
    } catch (error) {
      if (generation !== state.generation) return;
      showError(error.message);
    }
    state.timer = setTimeout(() => pollStudy(generation), POLL_MS);
  }

  /** Merge the changed rows; returns the set of changed trial numbers (or null). */
  function applyTrials(doc) {
    $("trial-count").textContent = String(doc.n_trials);
    state.version = doc.version;
    if (!doc.trials.length) return null;
    let newColumns = false;
    const changed = new Set();
    for (const row of doc.trials) {
      state.trials.set(row.number, row);
      changed.add(row.number);
      for (const name of Object.keys(row.params)) {
        if (!state.params.includes(name)) {
          state.params.push(name);
          newColumns = true;
        }
      }
      if (row.values && row.values.length > state.nValues) {
        state.nValues = row.values.length;
        newColumns = true;
      }
    }
    if (newColumns) {
      renderHeader();
      for (const number of state.trials.keys()) renderRow(number);
    } else {
      for (const number of changed) renderRow(number);
    }
    orderRows();
    applyFilter();
    return changed;
  }

  function refreshAfterChange(changed) {
    if (state.selected !== null && changed.has(state.selected)) loadDetail(state.selected);
    if (state.plotKind && Date.now() - state.plotAt > PLOT_REFRESH_MS) loadPlot(state.plotKind);
  }

  async function refreshSummary(name, generation) {
    const doc = await getJSON(studyPath(name));
    if (generation !== state.generation) return;
    state.summaryLoaded = true;
    renderSummary(doc);
  }

  function renderSummary(doc) {
    const counts = $("state-counts");
    clear(counts);
    for (const s of STATES) {
      if (doc.counts[s]) counts.append(stateBadge(s), " " + doc.counts[s] + "  ");
    }
    const sampler = doc.sampler && doc.sampler.name ? doc.sampler.name : "-";
    const scheduler = doc.scheduler && doc.scheduler.name ? doc.scheduler.name : "-";
    $("study-meta").textContent =
      `${doc.directions.join(", ")} · sampler ${sampler} · scheduler ${scheduler} · seed ${fmt(doc.seed)} · ${doc.storage}`;
    renderBest(doc.best_trials, doc.directions);
    renderWorkers(doc.workers);
    renderPopulation(doc.population);
  }

  function renderBest(best, directions) {
    const body = $("best-body");
    clear(body);
    if (!best.length) {
      body.append(el("p", { className: "muted", textContent: "No completed trial yet." }));
      return;
    }
    if (directions.length > 1) {
      body.append(el("p", { textContent: `Pareto front: ${best.length} trials` }));
    }
    for (const trial of best.slice(0, 5)) {
      const link = el("a", { href: studyHash(state.study, trial.number), textContent: `trial ${trial.number}` });
      const items = [["trial", link], ["value" + (trial.values.length > 1 ? "s" : ""), fmt(trial.values.length > 1 ? trial.values : trial.values[0])]];
      for (const [key, value] of Object.entries(trial.params)) items.push([key, fmt(value)]);
      body.append(keyValues(items));
    }
  }

  function renderWorkers(workers) {
    const body = $("workers-body");
    clear(body);
    body.append(el("p", { textContent: `${workers.length} worker process${workers.length === 1 ? "" : "es"}` }));
    const list = el("ul");
    for (const worker of workers.slice(0, 20)) list.append(el("li", { textContent: worker.id }));
    body.append(list);
  }

  // -- the trials table --------------------------------------------------------------------

  function columns() {
    const cols = [
      { key: "number", label: "#", num: true, get: (r) => r.number },
      { key: "state", label: "state", get: (r) => r.state },
    ];
    for (let i = 0; i < state.nValues; i++) {
      const label = state.nValues === 1 ? "value" : `value ${i}`;
      cols.push({ key: `value:${i}`, label, num: true, get: (r) => (r.values ? r.values[i] : null) });
    }
    for (const name of state.params) {
      cols.push({ key: `param:${name}`, label: name, param: true, get: (r) => (name in r.params ? r.params[name] : null) });
    }
    cols.push({ key: "duration", label: "duration", num: true, get: (r) => r.duration, show: fmtSeconds });
    cols.push({ key: "worker", label: "worker", get: (r) => r.worker });
    return cols;
  }

  function renderHeader() {
    const head = $("trials-table").tHead.rows[0];
    clear(head);
    for (const col of columns()) {
      const th = el("th", { scope: "col", textContent: col.label, dataset: { key: col.key }, title: "sort by " + col.label });
      if (col.key === state.sortKey) th.setAttribute("aria-sort", state.sortDir > 0 ? "ascending" : "descending");
      th.addEventListener("click", () => sortBy(col.key));
      head.append(th);
    }
  }

  function renderRow(number) {
    const row = state.trials.get(number);
    let tr = state.rows.get(number);
    if (!tr) {
      tr = el("tr", { dataset: { number: String(number) } });
      tr.addEventListener("click", () => {
        location.hash = studyHash(state.study, number);
      });
      state.rows.set(number, tr);
    }
    tr.dataset.state = row.state;
    tr.classList.toggle("selected", state.selected === number);
    clear(tr);
    for (const col of columns()) {
      const value = col.get(row);
      const td = el("td", { className: col.num || typeof value === "number" ? "num" : "" });
      if (col.key === "state") td.append(stateBadge(value));
      else td.textContent = col.show ? col.show(value) : fmt(value);
      td.dataset.key = col.key;
      tr.append(td);
    }
  }

  function compareValues(a, b) {
    const aMissing = a === null || a === undefined;
    const bMissing = b === null || b === undefined;
    if (aMissing || bMissing) return aMissing === bMissing ? 0 : aMissing ? 1 : -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  /** Put the rows in the sort order, moving DOM nodes only when the order changed. */
  function orderRows() {
    const col = columns().find((c) => c.key === state.sortKey) || columns()[0];
    const rows = [...state.trials.values()];
    rows.sort((a, b) => {
      const va = col.get(a);
      const vb = col.get(b);
      const missing = (va === null || va === undefined) - (vb === null || vb === undefined);
      if (missing) return missing; // missing values last in either direction
      return state.sortDir * compareValues(va, vb) || a.number - b.number;
    });
    const body = $("trials-table").tBodies[0];
    const current = body.children;
    let same = current.length === rows.length;
    for (let i = 0; same && i < rows.length; i++) same = current[i] === state.rows.get(rows[i].number);
    if (same) return;
    const fragment = document.createDocumentFragment();
    for (const row of rows) fragment.append(state.rows.get(row.number));
    body.append(fragment);
  }

  function sortBy(key) {
    state.sortDir = state.sortKey === key ? -state.sortDir : 1;
    state.sortKey = key;
    renderHeader();
    orderRows();
  }

  function renderFilter() {
    const box = $("state-filter");
    for (const label of [...box.querySelectorAll("label")]) label.remove();
    for (const s of STATES) {
      const input = el("input", { type: "checkbox", checked: state.shownStates.has(s), value: s, name: "state" });
      input.addEventListener("change", () => {
        if (input.checked) state.shownStates.add(s);
        else state.shownStates.delete(s);
        applyFilter();
      });
      box.append(el("label", { dataset: { state: s } }, input, " ", stateBadge(s)));
    }
  }

  function applyFilter() {
    let shown = 0;
    for (const [number, tr] of state.rows) {
      const visible = state.shownStates.has(state.trials.get(number).state);
      tr.hidden = !visible;
      shown += visible ? 1 : 0;
    }
    $("shown-count").textContent = `${shown} shown`;
  }

  // -- the trial detail panel --------------------------------------------------------------

  function selectTrial(number) {
    const previous = state.rows.get(state.selected);
    if (previous) previous.classList.remove("selected");
    state.selected = number;
    const panel = $("trial-detail");
    panel.hidden = number === null;
    if (number === null) return;
    const current = state.rows.get(number);
    if (current) current.classList.add("selected");
    $("detail-title").textContent = `trial ${number}`;
    loadDetail(number);
  }

  async function loadDetail(number) {
    const generation = state.generation;
    try {
      const doc = await getJSON(`${studyPath(state.study)}/trials/${number}`);
      if (generation !== state.generation || state.selected !== number) return;
      renderDetail(doc);
      for (const key of doc.logs) loadLog(number, key);
    } catch (error) {
      if (generation !== state.generation) return;
      const body = $("detail-body");
      clear(body);
      body.append(el("p", { className: "muted", textContent: error.message }));
    }
  }

  function keyValues(items) {
    const list = el("dl", { className: "kv" });
    for (const [key, value] of items) list.append(el("dt", { textContent: key }), el("dd", {}, value instanceof Node ? value : fmt(value)));
    return list;
  }

  function jsonBlock(value) {
    return el("pre", { textContent: JSON.stringify(value, null, 2) });
  }

  function renderDetail(doc) {
    const body = $("detail-body");
    clear(body);
    body.dataset.number = String(doc.number);
    body.append(
      keyValues([
        ["state", stateBadge(doc.state)],
        ["values", doc.values],
        ["duration", fmtSeconds(doc.duration)],
        ["started", fmtTime(doc.datetime_start)],
        ["finished", fmtTime(doc.datetime_complete)],
        ["worker", doc.worker],
      ]),
    );
    if (doc.reason) body.append(el("h3", { textContent: "reason" }), el("pre", { textContent: doc.reason }));
    const params = el("div", { id: "detail-params" }, keyValues(Object.entries(doc.params)));
    body.append(el("h3", { textContent: "parameters" }), params);
    const steps = Object.keys(doc.intermediate_values).map(Number).sort((a, b) => a - b);
    body.append(el("h3", { textContent: `intermediate values (${steps.length})` }));
    if (steps.length) body.append(chart(steps, steps.map((s) => doc.intermediate_values[String(s)])));
    body.append(el("h3", { textContent: "user attributes" }), jsonBlock(doc.user_attrs));
    body.append(el("h3", { textContent: "system attributes" }), jsonBlock(doc.system_attrs));
    body.append(el("h3", { textContent: "reproducibility" }), jsonBlock(doc.reproducibility));
    for (const key of doc.logs) {
      body.append(el("h3", { textContent: key.replace("_", " ") }), el("pre", { className: "log", dataset: { key }, textContent: "loading..." }));
    }
  }

  async function loadLog(number, key) {
    let text;
    try {
      const doc = await getJSON(`${studyPath(state.study)}/trials/${number}/logs/${key}`);
      text = (doc.truncated ? "...\n" : "") + doc.lines.join("\n");
    } catch (error) {
      text = error.message;
    }
    if (state.selected !== number) return;
    const pre = $("detail-body").querySelector(`pre.log[data-key="${key}"]`);
    if (pre) pre.textContent = text || "(empty)";
  }

  /** A small SVG line chart of intermediate values (no plotly needed). */
  function chart(xs, ys) {
    const ns = "http://www.w3.org/2000/svg";
    const width = 380;
    const height = 150;
    const left = 68; // room for the value labels
    const top = 10;
    const bottom = 22; // room for the step labels
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "chart");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const finite = ys.filter((y) => typeof y === "number");
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...finite), Math.max(...finite)];
    const sx = (x) => left + ((x - x0) / (x1 - x0 || 1)) * (width - left - 12);
    const sy = (y) => height - bottom - ((y - y0) / (y1 - y0 || 1)) * (height - top - bottom);
    const points = [];
    xs.forEach((x, i) => {
      if (typeof ys[i] !== "number") return;
      points.push(`${sx(x)},${sy(ys[i])}`);
      const dot = document.createElementNS(ns, "circle");
      dot.setAttribute("cx", sx(x));
      dot.setAttribute("cy", sy(ys[i]));
      dot.setAttribute("r", 2.5);
      const title = document.createElementNS(ns, "title");
      title.textContent = `step ${x}: ${fmt(ys[i])}`;
      dot.append(title);
      svg.append(dot);
    });
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.prepend(line);
    const label = (x, y, text, anchor) => {
      const node = document.createElementNS(ns, "text");
      node.setAttribute("x", x);
      node.setAttribute("y", y);
      node.setAttribute("text-anchor", anchor);
      node.textContent = text;
      svg.append(node);
    };
    label(left - 6, sy(y1) + 4, fmt(y1), "end");
    label(left - 6, sy(y0) + 4, fmt(y0), "end");
    label(left, height - 6, `step ${x0}`, "start");
    label(width - 12, height - 6, `step ${x1}`, "end");
    return svg;
  }

  // -- plots -------------------------------------------------------------------------------

  async function loadPlotTabs() {
    const tabs = $("plot-tabs");
    clear(tabs);
    $("plot-message").textContent = "";
    if (state.plotKinds === null) {
      try {
        state.plotKinds = await getJSON("/plots");
      } catch (error) {
        state.plotKinds = { available: false, kinds: [], message: error.message };
      }
    }
    const info = state.plotKinds;
    if (!info.available) {
      $("plot-message").textContent = info.message;
      return;
    }
    if (typeof window.Plotly === "undefined") {
      $("plot-message").textContent = "plotly.js could not be loaded (is the plotly package installed?)";
      return;
    }
    for (const kind of info.kinds) {
      if (POPULATION_KINDS.includes(kind)) continue;
      const button = el("button", { type: "button", textContent: kind, dataset: { kind }, role: "tab" });
      button.addEventListener("click", () => loadPlot(kind));
      tabs.append(button);
    }
    $("plot-message").textContent = "Choose a plot.";
  }

  async function loadPlot(kind) {
    state.plotKind = kind;
    state.plotAt = Date.now();
    for (const button of $("plot-tabs").children) button.classList.toggle("active", button.dataset.kind === kind);
    const div = $("plot");
    const generation = state.generation;
    try {
      const figure = await getJSON(`${studyPath(state.study)}/plots/${encodeURIComponent(kind)}`);
      if (generation !== state.generation || state.plotKind !== kind) return;
      $("plot-message").textContent = "";
      const layout = Object.assign({}, figure.layout || {}, { autosize: true });
      await window.Plotly.react(div, figure.data || [], layout, { responsive: true, displaylogo: false });
    } catch (error) {
      if (generation !== state.generation || state.plotKind !== kind) return;
      window.Plotly.purge(div);
      $("plot-message").textContent = error.message;
    }
  }

  // -- the population of a PBT / PB2 study --------------------------------------------------

  function resetPopulation() {
    state.population = null;
    state.populationAt = 0;
    $("population-card").hidden = true;
    const select = $("schedule-of");
    while (select.options.length > 1) select.remove(1);
    select.value = "";
    if (typeof window.Plotly !== "undefined") {
      window.Plotly.purge($("population-plot"));
      window.Plotly.purge($("schedule-plot"));
    }
  }

  /** Show the population card when the study has PBT / PB2 members (``doc.population``). */
  function renderPopulation(info) {
    const first = state.population === null;
    state.population = info || null;
    $("population-card").hidden = !info;
    if (!info) return;
    $("population-meta").textContent = `${info.n_members} members · ${info.exploits} exploits`;
    const select = $("schedule-of");
    const known = new Set(Array.from(select.options, (option) => option.value));
    for (const [member, numbers] of Object.entries(info.members)) {
      for (const number of numbers) {
        if (known.has(String(number))) continue;
        select.append(el("option", { value: String(number), textContent: `trial ${number} (member ${member})` }));
      }
    }
    if (first || Date.now() - state.populationAt > PLOT_REFRESH_MS) loadPopulation();
  }

  async function drawFigure(div, path) {
    const figure = await getJSON(path);
    const layout = Object.assign({}, figure.layout || {}, { autosize: true });
    await window.Plotly.react(div, figure.data || [], layout, { responsive: true, displaylogo: false });
  }

  async function loadPopulation() {
    state.populationAt = Date.now();
    const message = $("population-message");
    const info = state.plotKinds;
    if (info && !info.available) {
      message.textContent = info.message;
      return;
    }
    if (typeof window.Plotly === "undefined") {
      message.textContent = "plotly.js could not be loaded (is the plotly package installed?)";
      return;
    }
    const generation = state.generation;
    const base = `${studyPath(state.study)}/plots/`;
    const trial = $("schedule-of").value;
    try {
      await drawFigure($("population-plot"), base + "population");
      await drawFigure($("schedule-plot"), base + "schedule" + (trial ? `?trial=${encodeURIComponent(trial)}` : ""));
      if (generation === state.generation) message.textContent = "";
    } catch (error) {
      if (generation === state.generation) message.textContent = error.message;
    }
  }

  // -- start -------------------------------------------------------------------------------

  function start() {
    $("detail-close").addEventListener("click", () => {
      location.hash = studyHash(state.study);
    });
    $("schedule-of").addEventListener("change", loadPopulation);
    window.addEventListener("hashchange", route);
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
