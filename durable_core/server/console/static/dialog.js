// One modal dialog for every action that asks for input (a reason, a callback payload).
//
// The dialog is a native <dialog> opened with showModal(), so the page behind it is inert;
// Tab and Shift+Tab also cycle inside it (the focus trap), Escape cancels, and focus goes
// back to the button that opened it.

import { h, replace } from "./dom.js";

const FOCUSABLE = "button, input, textarea, select, a[href], [tabindex]:not([tabindex='-1'])";

let current = null;

function parts() {
  const get = (id) => document.getElementById(id);
  return {
    dialog: get("dialog"),
    form: get("dialog-form"),
    title: get("dialog-title"),
    text: get("dialog-text"),
    fields: get("dialog-fields"),
    error: get("dialog-error"),
    ok: get("dialog-ok"),
    cancel: get("dialog-cancel"),
  };
}

function field(f) {
  const id = `field-${f.name}`;
  const attrs = {
    id,
    name: f.name,
    required: f.required,
    "aria-describedby": f.hint ? `${id}-hint` : null,
    maxlength: f.maxlength,
    spellcheck: f.code ? "false" : null,
  };
  const input =
    f.type === "textarea"
      ? h("textarea", { ...attrs, rows: f.rows || 4, class: f.code ? "code" : null })
      : h("input", { ...attrs, type: "text", autocomplete: "off" });
  input.value = f.value || "";
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, f.label, f.required ? h("span", { class: "req" }, " (required)") : ""),
    input,
    f.hint ? h("p", { class: "hint", id: `${id}-hint` }, f.hint) : null,
  );
}

function trap(event) {
  if (event.key !== "Tab") return;
  const { dialog } = parts();
  const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => !el.disabled);
  if (!items.length) return;
  const first = items[0];
  const last = items[items.length - 1];
  if (event.shiftKey && document.activeElement === first) {
    last.focus();
    event.preventDefault();
  } else if (!event.shiftKey && document.activeElement === last) {
    first.focus();
    event.preventDefault();
  }
}

/**
 * Ask for input, then run `submit(values)`; an error it throws is shown in the dialog,
 * which stays open. Resolves with submit's result, or null if the operator cancelled.
 */
export function ask({ title, text, fields, ok, submit }) {
  const p = parts();
  if (current) current.finish(null);
  const opener = document.activeElement;
  return new Promise((resolve) => {
    p.title.textContent = title;
    p.text.textContent = text || "";
    p.error.textContent = "";
    p.ok.textContent = ok;
    p.ok.disabled = false;
    replace(p.fields, fields.map(field));

    const finish = (result) => {
      p.dialog.removeEventListener("keydown", trap);
      p.form.onsubmit = null;
      p.cancel.onclick = null;
      p.dialog.oncancel = null;
      if (p.dialog.open) p.dialog.close();
      current = null;
      if (opener && opener.isConnected) opener.focus();
      resolve(result);
    };
    current = { finish };

    p.form.onsubmit = async (event) => {
      event.preventDefault();
      const values = {};
      for (const f of fields) values[f.name] = p.form.elements[f.name].value;
      const missing = fields.find((f) => f.required && !values[f.name].trim());
      if (missing) {
        p.error.textContent = `${missing.label} is required.`;
        p.form.elements[missing.name].focus();
        return;
      }
      p.ok.disabled = true;
      p.error.textContent = "";
      try {
        finish(await submit(values));
      } catch (e) {
        p.error.textContent = e.message;
        p.ok.disabled = false;
      }
    };
    p.cancel.onclick = () => finish(null);
    p.dialog.oncancel = (event) => {
      event.preventDefault();
      finish(null);
    };
    p.dialog.addEventListener("keydown", trap);
    p.dialog.showModal();
    const first = p.fields.querySelector("input, textarea") || p.ok;
    first.focus();
  });
}
