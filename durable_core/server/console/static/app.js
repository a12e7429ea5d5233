// The console's entry point: the API key, who am I, and the hash router.
//
//   #/                     the execution list (filters in the query: #/?status=RUNNING)
//   #/executions/<id>      one execution

import { apiKey, forgetApiKey, get, setApiKey } from "./api.js";
import { detailPage } from "./detail.js";
import { h, replace } from "./dom.js";
import { listPage } from "./list.js";

const REFRESH_MS = Number(document.documentElement.dataset.refreshMs || 3000);

const main = document.getElementById("main");
const whoamiEl = document.getElementById("whoami");
const announceEl = document.getElementById("announce");
let me = null;
let cleanup = () => {};

function announce(text) {
  announceEl.textContent = "";
  window.setTimeout(() => {
    announceEl.textContent = text;
  }, 30);
}

function signOut() {
  forgetApiKey();
  me = null;
  replace(whoamiEl);
  route();
}

function keyForm(message) {
  cleanup();
  cleanup = () => {};
  const input = h("input", { id: "api-key", name: "key", type: "password", autocomplete: "off", required: true, "aria-describedby": "api-key-hint" });
  const error = h("p", { class: "error", role: "alert", id: "key-error" }, message || "");
  const form = h(
    "form",
    { class: "card key-form", "aria-labelledby": "key-h" },
    h("h1", { id: "key-h" }, "Sign in with an API key"),
    h("div", { class: "field" }, h("label", { for: "api-key" }, "API key"), input,
      h("p", { class: "hint", id: "api-key-hint" }, "Kept in this tab only (sessionStorage) and sent as a Bearer token to this server's API; closing the tab forgets it.")),
    error,
    h("div", { class: "buttons" }, h("button", { type: "submit", id: "key-submit" }, "Sign in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Enter an API key.";
      return;
    }
    setApiKey(key);
    if (await whoami()) route();
    else {
      error.textContent = "That key was not accepted.";
      input.focus();
    }
  });
  replace(main, form);
  input.focus();
}

async function whoami() {
  try {
    me = await get("whoami");
  } catch (e) {
    forgetApiKey();
    me = null;
    if (e.status !== 401 && e.status !== 403) keyForm(`Cannot reach the API: ${e.message}`);
    return false;
  }
  replace(
    whoamiEl,
    h("span", {}, "Signed in as ", h("strong", { id: "actor" }, me.actor), " ", h("span", { class: "chip", id: "role" }, me.role)),
    h("button", { type: "button", class: "secondary small", id: "sign-out", onclick: signOut }, "Forget key"),
  );
  return true;
}

async function route() {
  if (!apiKey()) {
    keyForm();
    return;
  }
  if (!me && !(await whoami())) {
    keyForm("Your API key was not accepted; enter it again.");
    return;
  }
  cleanup();
  const hash = window.location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const opts = { role: me.role, refreshMs: REFRESH_MS, announce };
  const match = path.match(/^\/executions\/(.+)$/);
  if (match) {
    const id = decodeURIComponent(match[1]);
    document.title = `${id} · durable-saga console`;
    cleanup = detailPage(main, id, opts);
  } else {
    document.title = "Executions · durable-saga console";
    cleanup = listPage(main, new URLSearchParams(query || ""), opts);
  }
}

window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true });
});
window.addEventListener("durable:unauthorized", () => {
  forgetApiKey();
  me = null;
  replace(whoamiEl);
  keyForm("Your API key was not accepted (or was revoked); enter it again.");
});
route();
