// How a status looks: a tone (the colour), an icon and a word, never the colour alone.

const TONES = {
  ok: ["succeeded", "completed", "compensated", "resolved"],
  bad: ["failed", "compensation_failed", "timed_out", "parked"],
  warn: ["skipped", "partially_compensated", "cancelled", "terminated", "stopped"],
  busy: ["running", "started", "compensating", "pending", "ready", "waiting"],
};
const ICONS = { ok: "✓", bad: "✗", warn: "!", busy: "●", idle: "○" };
const WORDS = {
  compensation_failed: "compensation failed",
  partially_compensated: "partially compensated",
  timed_out: "timed out",
  not_run: "not run",
};

export function tone(status) {
  const s = String(status || "").toLowerCase();
  for (const [name, list] of Object.entries(TONES)) if (list.includes(s)) return name;
  return "idle";
}

export function icon(status) {
  const s = String(status || "").toLowerCase();
  if (s === "parked") return "‖";
  if (s === "skipped") return "↷";
  if (s === "resolved") return "✎";
  return ICONS[tone(status)];
}

export function word(status) {
  const s = String(status || "").toLowerCase();
  return WORDS[s] || s.replaceAll("_", " ");
}

/** True for a saga status in which the saga waits for an operator. */
export function isParked(sagaStatus) {
  return sagaStatus === "parked" || sagaStatus === "compensation_failed";
}

/** A status badge: icon and word, coloured by tone (e.g. "✓ succeeded" in green). */
export function badge(status, label) {
  const el = document.createElement("span");
  el.className = `badge tone-${tone(status)}`;
  el.dataset.status = String(status || "");
  const mark = document.createElement("span");
  mark.setAttribute("aria-hidden", "true");
  mark.textContent = icon(status);
  el.append(mark, ` ${label || word(status) || "—"}`);
  return el;
}
