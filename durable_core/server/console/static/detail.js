// The execution page: summary, saga graph and operator actions, pending callbacks, the
// timeline of operations, and the payloads, pretty-printed as text.

import { ApiError, apiUrl, get, offers, post, seg } from "./api.js";
import { ask } from "./dialog.js";
import { between, duration, h, payload, replace, when } from "./dom.js";
import { sagaGraph } from "./graph.js";
import { badge, isParked } from "./status.js";

const OPERATOR = {
  retry: ["Retry compensation", "Run the failed compensation again, with its full retry policy."],
  skip: ["Skip compensation", "Give up on this undo and continue the rollback; the step's effect stays in place and the saga ends partially compensated."],
  resolve: ["Resolve by hand", "Mark the undo as done by hand (after you undid the effect yourself, or confirmed there was none) and continue the rollback."],
};
const REASON = { name: "reason", label: "Reason", type: "textarea", required: true, maxlength: 2000, hint: "Recorded with your name in the journal and the audit log." };

const canOperate = (role) => role === "operate" || role === "admin";
const OPERATOR_CALLBACK = "/executions/{id}/callbacks/{operation_id}/succeed";

function summary(ex) {
  const item = (term, value) => h("div", {}, h("dt", {}, term), h("dd", {}, value));
  return h(
    "dl",
    { class: "summary" },
    item("Function", h("span", { class: "mono" }, ex.function)),
    item("Status", badge(String(ex.status).toLowerCase(), ex.status)),
    item("Saga", ex.saga_status ? badge(ex.saga_status) : "—"),
    item("Waiting for", ex.waiting_for || "—"),
    item("Wakes at", when(ex.wake_at)),
    item("Created", when(ex.created_at)),
    item("Updated", when(ex.updated_at)),
  );
}

/** An ErrorInfo as its type and message in words, the traceback folded away. */
function errorBlock(label, error) {
  const info = typeof error === "string" ? { message: error } : error || {};
  return h(
    "div",
    { class: "error-block" },
    h("p", { class: "error-text" }, info.type ? h("span", { class: "mono" }, `${info.type}: `) : null, info.message || ""),
    info.data ? payload(`${label}: data`, info.data) : null,
    info.traceback ? h("details", {}, h("summary", {}, "Traceback"), payload(`${label}: traceback`, info.traceback)) : null,
  );
}

function depthOf(op, byId) {
  let depth = 0;
  for (let p = op.parent_id; p && byId.has(p) && depth < 6; p = byId.get(p).parent_id) depth += 1;
  return depth;
}

function timeline(ops) {
  if (!ops.length) return h("p", { class: "muted" }, "No operations recorded yet.");
  const byId = new Map(ops.map((op) => [op.id, op]));
  const starts = ops.map((o) => o.started_at).filter(Boolean).map((t) => new Date(t).getTime());
  const ends = ops.map((o) => o.ended_at || o.started_at).filter(Boolean).map((t) => new Date(t).getTime());
  const t0 = Math.min(...starts);
  const span = Math.max(Math.max(...ends) - t0, 1);
  return h(
    "ol",
    { class: "timeline", "aria-label": "Operations, in the order they were recorded" },
    ops.map((op) => {
      const ms = between(op.started_at, op.ended_at);
      const bar = h("span", { class: `bar tone-bar-${String(op.status).toLowerCase()}` });
      if (op.started_at) {
        const left = ((new Date(op.started_at).getTime() - t0) / span) * 100;
        bar.style.left = `${Math.min(Math.max(left, 0), 99.5)}%`;
        bar.style.width = `${Math.max(((ms ?? 0) / span) * 100, 0.5)}%`;
      }
      const facts = [];
      if (op.attempt > 1) facts.push(`${op.attempt} attempts (${op.attempt - 1} ${op.attempt === 2 ? "retry" : "retries"})`);
      else if (op.attempt === 1) facts.push("1 attempt");
      if (ms !== null) facts.push(`took ${duration(ms)}`);
      else if (op.started_at && ["STARTED", "PENDING", "READY"].includes(op.status)) {
        facts.push(`open for ${duration(Date.now() - new Date(op.started_at).getTime())}`);
      }
      const extra = [];
      if (op.next_attempt_at) extra.push(h("li", {}, "Next attempt at ", when(op.next_attempt_at)));
      if (op.wait_until) extra.push(h("li", {}, "Waits until ", when(op.wait_until)));
      const hasResult = op.result !== null && op.result !== undefined;
      return h(
        "li",
        { class: `op depth-${Math.min(depthOf(op, byId), 4)}`, dataset: { op: op.id, type: op.type } },
        h(
          "div",
          { class: "op-head" },
          h("span", { class: "chip" }, op.sub_type || op.type),
          h("span", { class: "op-name" }, op.name || op.id),
          badge(String(op.status).toLowerCase(), op.status),
          h("span", { class: "muted" }, facts.join(" · ")),
          h("span", { class: "muted op-time" }, when(op.started_at)),
        ),
        h("span", { class: "track", "aria-hidden": "true" }, bar),
        extra.length ? h("ul", { class: "op-facts" }, extra) : null,
        op.error ? errorBlock(`error of ${op.name || op.id}`, op.error) : null,
        hasResult ? h("details", {}, h("summary", {}, "Result"), payload(`result of ${op.name || op.id}`, op.result)) : null,
      );
    }),
  );
}

function webhookHelp(cb) {
  const url = apiUrl("callbacks/TOKEN/succeed");
  return h(
    "details",
    { class: "webhook" },
    h("summary", {}, "How the external system completes it"),
    h("p", {}, `The system that was given this callback's token (when "${cb.name}" was created) calls the webhook; the API never shows the token.`),
    h("pre", { class: "payload", tabindex: "0", "aria-label": "webhook call" },
      `curl -X POST '${url}' \\\n  -H 'Content-Type: application/json' \\\n  -d '{"tracking": "..."}'`),
    h("p", { class: "muted" }, "…/fail with {\"message\": \"...\"} reports a failure; …/heartbeat keeps a heartbeat timeout alive."),
  );
}

async function completeCallback(ex, cb, outcome, ctx) {
  const path = `executions/${seg(ex.id)}/callbacks/${seg(cb.operation_id)}/${outcome}`;
  const fields =
    outcome === "succeed"
      ? [{ name: "result", label: "Result (JSON)", type: "textarea", code: true, required: true, value: "{}", rows: 5 }, REASON]
      : [{ name: "message", label: "Failure message", type: "text", required: true }, REASON];
  const done = await ask({
    title: `${outcome === "succeed" ? "Complete" : "Fail"} callback "${cb.name}"`,
    text: "Completes the callback as the external system would, recorded with your name.",
    fields,
    ok: outcome === "succeed" ? "Complete callback" : "Fail callback",
    submit: async (v) => {
      let body;
      if (outcome === "succeed") {
        try {
          body = { result: JSON.parse(v.result), reason: v.reason.trim() };
        } catch (e) {
          throw new Error(`The result is not valid JSON: ${e.message}`);
        }
      } else {
        body = { message: v.message.trim(), reason: v.reason.trim() };
      }
      try {
        return await post(path, body);
      } catch (e) {
        if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
          throw new Error(`${e.message} (if the callback is still pending, complete it through its webhook, shown under it).`);
        }
        throw e;
      }
    },
  });
  if (done !== null) ctx.changed(`Callback "${cb.name}" ${outcome === "succeed" ? "completed" : "failed"}.`);
}

function callbacks(ex, ctx) {
  const pending = ex.pending_callbacks || [];
  if (!pending.length) return null;
  return h(
    "section",
    { class: "card", "aria-labelledby": "callbacks-h" },
    h("h2", { id: "callbacks-h" }, "Pending callbacks"),
    h(
      "ul",
      { class: "callbacks" },
      pending.map((cb) =>
        h(
          "li",
          { class: "callback", dataset: { callback: cb.name } },
          h("div", { class: "op-head" },
            h("strong", {}, cb.name),
            badge(cb.privileged ? "parked" : "pending", cb.privileged ? "operator decision" : "waiting"),
            h("span", { class: "muted" }, cb.timeout_at ? ["times out ", when(cb.timeout_at)] : "no timeout")),
          cb.privileged
            ? h("p", { class: "muted" }, "Privileged: only the saga's operator actions decide it, never a token holder.")
            : [
                canOperate(ctx.role) && ctx.operatorCallbacks
                  ? h("div", { class: "buttons" },
                      h("button", { type: "button", id: `cb-succeed-${cb.operation_id}`, onclick: () => completeCallback(ex, cb, "succeed", ctx) }, `Complete "${cb.name}"…`),
                      h("button", { type: "button", class: "secondary", id: `cb-fail-${cb.operation_id}`, onclick: () => completeCallback(ex, cb, "fail", ctx) }, "Fail…"))
                  : null,
                webhookHelp(cb),
              ],
        ),
      ),
    ),
  );
}

async function operate(ex, action, label, text, ctx, path) {
  const done = await ask({
    title: `${label}: ${ex.id}`,
    text,
    fields: [REASON],
    ok: label,
    submit: (v) => post(path, { reason: v.reason.trim() }),
  });
  if (done !== null) ctx.changed(`${label}: recorded.`);
}

function sagaSection(ex, ctx) {
  const saga = ex.saga;
  if (!saga) return null;
  const parked = saga.parked;
  return h(
    "section",
    { class: "card", "aria-labelledby": "saga-h" },
    h("h2", { id: "saga-h" }, "Saga ", badge(saga.status)),
    sagaGraph(saga),
    parked
      ? h(
          "div",
          { class: "parked", role: "region", "aria-labelledby": "parked-h" },
          h("h3", { id: "parked-h" }, `‖ Parked: the compensation of "${parked.step}" needs an operator`),
          parked.error ? errorBlock("error that parked the saga", parked.error) : null,
          canOperate(ctx.role)
            ? h("div", { class: "buttons" },
                (parked.actions || []).filter((a) => OPERATOR[a]).map((a) =>
                  h("button", {
                    type: "button",
                    id: `saga-${a}`,
                    class: a === "retry" ? null : "secondary",
                    title: OPERATOR[a][1],
                    onclick: () => operate(ex, a, OPERATOR[a][0], OPERATOR[a][1], ctx, `executions/${seg(ex.id)}/saga/${a}`),
                  }, `${OPERATOR[a][0]}…`)))
            : h("p", { class: "muted" }, "Your key has the read role: an operator (role operate) can retry, skip or resolve."),
        )
      : isParked(saga.status)
        ? h("p", { class: "muted" }, "The saga is parked; no operator action is offered.")
        : null,
  );
}

function lifecycle(ex, ctx) {
  if (ex.status !== "RUNNING" || !canOperate(ctx.role)) return null;
  return h(
    "div",
    { class: "buttons" },
    h("button", {
      type: "button", class: "secondary", id: "exec-cancel",
      onclick: () => operate(ex, "cancel", "Cancel execution", "Stops at the next operation boundary; a saga compensates what it did.", ctx, `executions/${seg(ex.id)}/cancel`),
    }, "Cancel…"),
    h("button", {
      type: "button", class: "danger", id: "exec-terminate",
      onclick: () => operate(ex, "terminate", "Terminate execution", "Ends it WITHOUT compensating: what is not undone stays in place.", ctx, `executions/${seg(ex.id)}/terminate`),
    }, "Terminate…"),
  );
}

function payloads(ex) {
  const parts = [h("h2", { id: "payloads-h" }, "Input and result"), h("h3", {}, "Input"), payload("input", ex.input)];
  if (ex.result !== null && ex.result !== undefined) parts.push(h("h3", {}, "Result"), payload("result", ex.result));
  if (ex.error) parts.push(h("h3", {}, "Error"), errorBlock("error", ex.error));
  return h("section", { class: "card", "aria-labelledby": "payloads-h" }, parts);
}

/** Render the page of execution `id` into `main`; returns a cleanup function. */
export function detailPage(main, id, { role, refreshMs, announce }) {
  let timer = null;
  let lastJson = "";
  let gone = false;
  const ctx = {
    role,
    operatorCallbacks: false,
    changed: (message) => {
      announce(message);
      load(true);
    },
  };

  async function load(force) {
    clearTimeout(timer);
    if (!force && (document.getElementById("dialog").open || document.hidden)) {
      timer = setTimeout(() => load(false), refreshMs); // not under an open dialog
      return;
    }
    try {
      const ex = await get(`executions/${seg(id)}`);
      ctx.operatorCallbacks = (ex.pending_callbacks || []).some((cb) => !cb.privileged)
        ? await offers("POST", OPERATOR_CALLBACK)
        : false;
      if (gone) return;
      const json = JSON.stringify(ex);
      if (json !== lastJson || force) {
        lastJson = json;
        const focusedId = document.activeElement && document.activeElement.id;
        replace(
          main,
          h("p", {}, h("a", { href: "#/", class: "back" }, "← All executions")),
          h("div", { class: "title-row" }, h("h1", { class: "mono" }, ex.id), lifecycle(ex, ctx)),
          summary(ex),
          sagaSection(ex, ctx),
          callbacks(ex, ctx),
          h("section", { class: "card", "aria-labelledby": "timeline-h" }, h("h2", { id: "timeline-h" }, "Timeline"), timeline(ex.operations || [])),
          payloads(ex),
        );
        const again = focusedId && document.getElementById(focusedId);
        if (again) again.focus();
      }
      clearTimeout(timer);
      const paused = sessionStorage.getItem("durable-saga.paused") === "1";
      if (ex.status === "RUNNING" && !paused) timer = setTimeout(() => load(false), refreshMs);
    } catch (e) {
      if (e.status === 401) window.dispatchEvent(new CustomEvent("durable:unauthorized"));
      replace(main, h("p", {}, h("a", { href: "#/", class: "back" }, "← All executions")),
        h("h1", { class: "mono" }, id), h("p", { class: "error", role: "alert" }, `Could not load the execution: ${e.message}`));
    }
  }
  load(false);
  return () => {
    gone = true;
    clearTimeout(timer);
  };
}
