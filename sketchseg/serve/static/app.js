// The drawing page: strokes drawn with pointer events (mouse, pen, touch), sent to POST /v1/segment as absolute
// point lists with the canvas size; the answer's stroke_labels recolour each stroke, its legend lists the shares.
// Plain JavaScript, no build step, nothing fetched but this server's own endpoints.
"use strict";

const INK = "#000000";
const LINE_WIDTH = 3;
const UNTRAINED_TEXT = "UNTRAINED weights: results are meaningless";

const state = {
  strokes: [],      // each a list of [x, y] in canvas pixels, in drawing order
  current: null,    // the stroke being drawn
  pointer: null,    // the pointerId drawing it
  result: null,     // the last answer of /v1/segment for these strokes, or null
};

const $ = (id) => document.getElementById(id);
const canvas = $("board");
const ctx = canvas.getContext("2d");

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) * (canvas.width / rect.width);
  const y = (event.clientY - rect.top) * (canvas.height / rect.height);
  return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
}

function strokeColour(i) {
  const r = state.result;
  if (!r || !r.stroke_labels || i >= r.stroke_labels.length) return INK;
  const k = r.stroke_labels[i].index; // 0-based into categories; -1 no pixel, -2 no category
  return k >= 0 ? r.colours[k] : r.unlabelled_colour;
}

function drawStroke(points, colour) {
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = LINE_WIDTH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (points.length === 1) {  // a dot
    ctx.beginPath();
    ctx.arc(points[0][0], points[0][1], LINE_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(points[0][0], points[0][1]);
  for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
  ctx.stroke();
}

function redraw() {
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  state.strokes.forEach((points, i) => drawStroke(points, strokeColour(i)));
  if (state.current) drawStroke(state.current, INK);
  const untrained = Boolean(state.result && state.result.untrained);
  if (untrained) { // the answer of random weights says so on the drawing, as segment's images do
    ctx.fillStyle = "#c80000";
    ctx.font = "bold 16px sans-serif";
    ctx.fillText(UNTRAINED_TEXT, 8, 22);
  }
  canvas.dataset.strokes = String(state.strokes.length);
  canvas.dataset.segmented = state.result ? "true" : "false";
  canvas.dataset.untrained = untrained ? "true" : "false";
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function forgetResult() {
  state.result = null;
  $("legend").replaceChildren();
  $("notes").replaceChildren();
}

// ---- drawing ------------------------------------------------------------------------------------------------------

canvas.addEventListener("pointerdown", (event) => {
  if (state.current) return; // one stroke at a time
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  forgetResult();
  state.pointer = event.pointerId;
  state.current = [canvasPoint(event)];
  redraw();
});

canvas.addEventListener("pointermove", (event) => {
  if (!state.current || event.pointerId !== state.pointer) return;
  event.preventDefault();
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) state.current.push(canvasPoint(e));
  redraw();
});

function endStroke(event) {
  if (!state.current || event.pointerId !== state.pointer) return;
  state.strokes.push(state.current);
  state.current = null;
  state.pointer = null;
  redraw();
}

canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

$("undo").addEventListener("click", () => {
  state.strokes.pop();
  forgetResult();
  redraw();
});

$("clear").addEventListener("click", () => {
  state.strokes = [];
  forgetResult();
  setStatus("");
  redraw();
});

// ---- controls -----------------------------------------------------------------------------------------------------

$("threshold").addEventListener("input", () => {
  $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
});
$("categories").addEventListener("input", () => { $("use-categories").checked = true; });
$("caption").addEventListener("input", () => { $("use-caption").checked = true; });

function requestBody() {
  const body = { strokes: state.strokes, width: canvas.width, height: canvas.height };
  if ($("use-caption").checked) {
    body.caption = $("caption").value;
  } else {
    body.categories = $("categories").value.split(",").map((s) => s.trim()).filter((s) => s);
  }
  if ($("isolate").checked) body.threshold = Number($("threshold").value);
  return body;
}

function showLegend(result) {
  const items = result.legend.map((entry) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = entry.colour;
    li.append(swatch, document.createTextNode(entry.text));
    return li;
  });
  if (result.isolated) {
    for (const [name, iso] of Object.entries(result.isolated)) {
      const li = document.createElement("li");
      li.textContent = `isolated ${name}: ${(iso.stroke_share * 100).toFixed(1)}% of stroke pixels`;
      items.push(li);
    }
  }
  $("legend").replaceChildren(...items);
  $("notes").replaceChildren(...result.notes.map((n) => {
    const li = document.createElement("li");
    li.textContent = n;
    return li;
  }));
}

async function segment() {
  if (!state.strokes.length) {
    setStatus("Draw something first.", true);
    return;
  }
  const sent = state.strokes.length;
  setStatus("Segmenting...");
  $("segment").disabled = true;
  try {
    const resp = await fetch("/v1/segment", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(requestBody()),
    });
    const answer = await resp.json();
    if (!resp.ok) {
      setStatus(`Error ${resp.status}: ${answer.detail}`, true);
      return;
    }
    if (state.strokes.length !== sent) { // the drawing changed meanwhile
      setStatus("The drawing changed; press Segment again.");
      return;
    }
    state.result = answer;
    showLegend(answer);
    redraw();
    setStatus(`Segmented ${sent} stroke${sent === 1 ? "" : "s"} into ${answer.categories.length} categories.`);
  } catch (err) {
    setStatus(`Request failed: ${err}`, true);
  } finally {
    $("segment").disabled = false;
  }
}

$("segment").addEventListener("click", segment);

// ---- examples and model card --------------------------------------------------------------------------------------

let examples = [];

function loadExample(example) {
  const sx = canvas.width / example.width;
  const sy = canvas.height / example.height;
  const s = Math.min(sx, sy);
  state.strokes = example.strokes.map((stroke) => stroke.map(([x, y]) => [x * s, y * s]));
  $("categories").value = example.categories.join(", ");
  $("caption").value = example.caption;
  forgetResult();
  setStatus(`Loaded "${example.caption}".`);
  redraw();
}

$("examples").addEventListener("change", () => {
  const i = $("examples").value;
  if (i !== "") loadExample(examples[Number(i)]);
});

async function init() {
  redraw();
  try {
    examples = await (await fetch("/v1/examples")).json();
    examples.forEach((ex, i) => {
      const option = document.createElement("option");
      option.value = String(i);
      option.textContent = ex.name;
      $("examples").append(option);
    });
    const resp = await fetch("/healthz"); // the weights line, without the model card
    const health = await resp.json();
    $("weights").textContent = resp.ok && typeof health.weights === "string"
      ? `weights: ${health.weights}`
      : `weights: unknown (the server answered ${resp.status}: ${health.detail || "no weights line"})`;
  } catch (err) {
    setStatus(`Could not reach the server: ${err}`, true);
  }
}

window.sketchseg = state; // for tests and the console
init();
