// The saga graph as inline SVG: forward steps left to right, the pivot marked, and the
// rollback path beneath them drawn right to left, each compensation under its step.
//
// Every node says its status in words and with an icon as well as by colour; the SVG has
// a title and a description that reads the whole graph as text for screen readers.

import { h, s } from "./dom.js";
import { icon, tone, word } from "./status.js";

const COL = 184;
const NODE_W = 156;
const NODE_H = 58;
const PAD = 16;
const TOP = 40;
const GAP = 74;
const ROLLED_BACK = [
  "compensating",
  "compensated",
  "compensation_failed",
  "parked",
  "partially_compensated",
];
const NOT_STARTED = ["pending", "not_run", null, undefined];

function short(text, max = 17) {
  const t = String(text ?? "");
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function node({ x, y, kind, name, status, pivot, parked, step }) {
  const label = parked ? "parked" : status;
  const shown = kind === "compensation" && name === `compensate:${step}` ? `undo ${step}` : name;
  const g = s("g", {
    class: `node ${kind}`,
    dataset: { kind, step, status: status || "", ...(parked ? { parked: "true" } : {}) },
    transform: `translate(${x} ${y})`,
  });
  g.append(
    s("title", {}, `${kind === "forward" ? "step" : "compensation"} ${name}: ${word(label)}`),
    s("rect", {
      class: `box tone-${tone(label)}${pivot ? " pivot" : ""}`,
      width: NODE_W,
      height: NODE_H,
      rx: 8,
    }),
    s("text", { class: "name", x: 10, y: 23 }, short(shown)),
    s("text", { class: "state", x: 10, y: 44 }, `${icon(label)} ${word(label)}`),
  );
  if (pivot) {
    g.append(s("text", { class: "tag", x: 0, y: -8 }, "◆ pivot"));
  }
  return g;
}

function arrow(x1, y1, x2, y2, cls) {
  return s("line", { class: `edge ${cls}`, x1, y1, x2, y2, "marker-end": `url(#arrow-${cls})` });
}

function rollbackShown(saga) {
  const comps = saga.steps.map((st) => st.compensation).filter(Boolean);
  if (!comps.length) return false;
  return ROLLED_BACK.includes(saga.status) || comps.some((c) => !NOT_STARTED.includes(c.status));
}

/** A description of the graph in words (the SVG's <desc>, and the caption under it). */
export function describe(saga) {
  const fwd = saga.steps.map(
    (st) => `${st.name}${st.pivot ? " (pivot)" : ""}: ${word(st.status)}`,
  );
  const text = [`Forward: ${fwd.join(", ") || "no steps yet"}.`];
  if (rollbackShown(saga)) {
    const back = saga.steps
      .filter((st) => st.compensation)
      .reverse()
      .map((st) => {
        const parked = saga.parked && saga.parked.step === st.name;
        return `${st.compensation.name}: ${parked ? "parked" : word(st.compensation.status)}`;
      });
    text.push(`Rollback, in order: ${back.join(", ")}.`);
  }
  return text.join(" ");
}

/** The <figure> holding the SVG graph of `saga` (a SagaView) and its text caption. */
export function sagaGraph(saga) {
  const steps = saga.steps;
  const rollback = rollbackShown(saga);
  const n = Math.max(steps.length, 1);
  const width = PAD * 2 + (n - 1) * COL + NODE_W;
  const backY = TOP + NODE_H + GAP;
  const height = (rollback ? backY + NODE_H : TOP + NODE_H) + PAD;
  const x = (i) => PAD + i * COL;

  const svg = s("svg", {
    class: "saga-graph",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": "saga-graph-title saga-graph-desc",
  });
  const defs = s("defs");
  for (const cls of ["forward", "rollback", "start"]) {
    defs.append(
      s(
        "marker",
        {
          id: `arrow-${cls}`,
          viewBox: "0 0 10 10",
          refX: 9,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: "auto-start-reverse",
        },
        s("path", { class: `head ${cls}`, d: "M0,0 L10,5 L0,10 z" }),
      ),
    );
  }
  svg.append(
    s("title", { id: "saga-graph-title" }, `Saga graph (${word(saga.status)})`),
    s("desc", { id: "saga-graph-desc" }, describe(saga)),
    defs,
    s("text", { class: "lane", x: PAD, y: 14 }, "forward →"),
  );

  const midY = TOP + NODE_H / 2;
  steps.forEach((st, i) => {
    if (i > 0) svg.append(arrow(x(i - 1) + NODE_W, midY, x(i) - 3, midY, "forward"));
  });
  steps.forEach((st, i) => {
    svg.append(
      node({ x: x(i), y: TOP, kind: "forward", name: st.name, status: st.status, step: st.name, pivot: st.pivot }),
    );
  });

  if (rollback) {
    const failed = steps.findIndex((st) => st.status === "failed");
    const undone = steps.map((st, i) => (st.compensation ? i : -1)).filter((i) => i >= 0);
    const start = failed >= 0 ? failed : Math.max(steps.length - 1, undone[undone.length - 1]);
    const backMid = backY + NODE_H / 2;
    svg.append(s("text", { class: "lane", x: PAD, y: backY - 12 }, "← rollback (reverse order)"));
    svg.append(arrow(x(start) + NODE_W / 2, TOP + NODE_H, x(start) + NODE_W / 2, backY - 3, "start"));
    let prevLeft = null;
    if (!steps[start] || !steps[start].compensation) {
      const cx = x(start) + NODE_W / 2;
      svg.append(
        s(
          "g",
          { class: "rollback-start" },
          s("circle", { cx, cy: backMid, r: 9 }),
          s("text", { class: "state", x: cx, y: backMid + 26, "text-anchor": "middle" }, "rollback starts"),
        ),
      );
      prevLeft = cx - 9;
    }
    for (const i of [...undone].reverse()) {
      const st = steps[i];
      if (prevLeft !== null) svg.append(arrow(prevLeft, backMid, x(i) + NODE_W + 3, backMid, "rollback"));
      const parked = Boolean(saga.parked && saga.parked.step === st.name);
      svg.append(
        node({
          x: x(i),
          y: backY,
          kind: "compensation",
          name: st.compensation.name,
          status: st.compensation.status,
          step: st.name,
          parked,
        }),
      );
      prevLeft = x(i);
    }
  }
  return h(
    "figure",
    { class: "graph" },
    h("div", { class: "graph-scroll", tabindex: "0", "aria-label": "saga graph, scrollable" }, svg),
    h("figcaption", { class: "muted" }, describe(saga)),
  );
}
