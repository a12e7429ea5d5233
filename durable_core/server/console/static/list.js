// The execution list: filters, cursor pagination and live refresh.
//
// The filters live in the URL (#/?status=RUNNING&q=tour), so a filtered list can be
// bookmarked and Back works; the page's cursors are kept in memory for Previous.

import { get, withQuery } from "./api.js";
import { h, replace, when } from "./dom.js";
import { badge } from "./status.js";

const STATUSES = ["", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];
const SAGA_STATUSES = [
  "",
  "running",
  "compensating",
  "compensated",
  "compensation_failed",
  "parked",
  "partially_compensated",
  "completed",
];
const FILTERS = ["function", "status", "saga_status", "q", "waiting"];
const PAGE_SIZE = 25;
const MAX_PAGE_SIZE = 200;

function select(name, label, options, value) {
  const el = h(
    "select",
    { id: `f-${name}`, name },
    options.map((o) => h("option", { value: o }, o ? o.replaceAll("_", " ") : "any")),
  );
  el.value = value || "";
  return h("div", { class: "field" }, h("label", { for: `f-${name}` }, label), el);
}

function input(name, label, value, placeholder) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: `f-${name}` }, label),
    h("input", { id: `f-${name}`, name, type: "search", value: value || "", placeholder, autocomplete: "off" }),
  );
}

function row(ex) {
  const href = `#/executions/${encodeURIComponent(ex.id)}`;
  return h(
    "tr",
    { dataset: { id: ex.id } },
    h("td", { "data-label": "Execution" }, h("a", { href, class: "exec-link", dataset: { id: ex.id } }, ex.id)),
    h("td", { "data-label": "Function", class: "mono" }, ex.function),
    h("td", { "data-label": "Status" }, badge(String(ex.status).toLowerCase(), ex.status)),
    h("td", { "data-label": "Saga" }, ex.saga_status ? badge(ex.saga_status) : h("span", { class: "muted" }, "—")),
    h("td", { "data-label": "Waiting for" }, ex.waiting_for || h("span", { class: "muted" }, "—")),
    h("td", { "data-label": "Updated" }, when(ex.updated_at)),
  );
}

/** Render the list into `main` for the hash query `params`; returns a cleanup function. */
export function listPage(main, params, { refreshMs, announce }) {
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || ""]));
  const asked = Number.parseInt(params.get("limit") || "", 10);
  const limit = asked > 0 ? Math.min(asked, MAX_PAGE_SIZE) : PAGE_SIZE;
  const cursors = [null];
  let page = 0;
  let timer = null;
  let paused = sessionStorage.getItem("durable-saga.paused") === "1";
  let lastJson = "";

  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter executions" },
    input("function", "Function", filters.function, "module:function"),
    select("status", "Status", STATUSES, filters.status),
    select("saga_status", "Saga status", SAGA_STATUSES, filters.saga_status),
    input("q", "Id contains", filters.q, "text in the id"),
    input("waiting", "Waiting for", filters.waiting, "e.g. callback"),
    h("div", { class: "field actions" }, h("button", { type: "submit" }, "Apply filters"),
      h("button", { type: "button", class: "secondary", id: "clear-filters" }, "Clear")),
  );
  const status = h("p", { class: "muted", id: "list-status", "aria-live": "polite" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "executions", "aria-describedby": "list-status" },
    h("caption", { class: "visually-hidden" }, "Executions, newest first"),
    h("thead", {}, h("tr", {}, ["Execution", "Function", "Status", "Saga", "Waiting for", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
    tbody,
  );
  const prev = h("button", { type: "button", class: "secondary", id: "prev-page" }, "← Previous");
  const next = h("button", { type: "button", class: "secondary", id: "next-page" }, "Next →");
  const pause = h("button", { type: "button", class: "secondary", id: "live-toggle", "aria-pressed": String(!paused) });
  const refresh = h("button", { type: "button", class: "secondary", id: "refresh-now" }, "Refresh now");

  const setPauseLabel = () => {
    pause.setAttribute("aria-pressed", String(!paused));
    pause.textContent = paused ? "Live refresh: paused" : "Live refresh: on";
  };
  setPauseLabel();

  replace(
    main,
    h("h1", {}, "Executions"),
    form,
    h("div", { class: "toolbar" }, pause, refresh, h("span", { class: "spacer" }), prev, next),
    h("div", { class: "table-wrap" }, table),
    status,
  );

  async function load({ quiet } = {}) {
    const query = { ...filters, cursor: cursors[page], limit: String(limit) };
    try {
      const data = await get(withQuery("executions", query));
      const json = JSON.stringify(data);
      cursors[page + 1] = data.next_cursor;
      prev.disabled = page === 0;
      next.disabled = !data.next_cursor;
      const shown = data.items.length ? `Page ${page + 1}: ${data.items.length} executions.` : "No executions match.";
      status.textContent = paused ? `${shown} Live refresh paused.` : `${shown} Refreshing every ${refreshMs / 1000} s.`;
      if (json === lastJson) return;
      lastJson = json;
      const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.id;
      replace(tbody, data.items.map(row));
      if (focused) {
        const again = [...tbody.querySelectorAll("a.exec-link")].find((a) => a.dataset.id === focused);
        if (again) again.focus();
      }
      if (!quiet) announce(status.textContent);
    } catch (e) {
      status.textContent = `Could not load executions: ${e.message}`;
      if (e.status === 401) window.dispatchEvent(new CustomEvent("durable:unauthorized"));
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = paused ? null : setInterval(() => document.hidden || load({ quiet: true }), refreshMs);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const k of FILTERS) {
      const v = form.elements[k].value.trim();
      if (v) q.set(k, v);
    }
    if (limit !== PAGE_SIZE) q.set("limit", String(limit));
    const text = q.toString();
    window.location.hash = text ? `#/?${text}` : "#/";
  });
  form.querySelector("#clear-filters").addEventListener("click", () => {
    window.location.hash = "#/";
  });
  prev.addEventListener("click", () => {
    page = Math.max(0, page - 1);
    lastJson = "";
    load();
  });
  next.addEventListener("click", () => {
    if (!cursors[page + 1]) return;
    page += 1;
    lastJson = "";
    load();
  });
  pause.addEventListener("click", () => {
    paused = !paused;
    sessionStorage.setItem("durable-saga.paused", paused ? "1" : "0");
    setPauseLabel();
    schedule();
    announce(paused ? "Live refresh paused" : "Live refresh on");
  });
  refresh.addEventListener("click", () => load());

  load({ quiet: true });
  schedule();
  return () => clearInterval(timer);
}
