// Form fields built from /openapi.json (each request field's type, description, x-default and x-range, which the
// gateway renders from the protos' comments), what a form sends, and errors shown where they belong.

import {callJson} from "./api.js";

let documentPromise;

/** The properties of the JSON body that `method path` takes, as /openapi.json describes it. */
export async function requestFields(method, path) {
  documentPromise ||= callJson("GET", "/openapi.json");
  const document = await documentPromise;
  const operation = document.paths[path]?.[method.toLowerCase()];
  const ref = operation?.requestBody?.content["application/json"].schema.$ref;
  if (!ref) throw new Error(`/openapi.json has no JSON body for ${method} ${path}`);
  return document.components.schemas[ref.split("/").pop()].properties;
}

function rangeText(range) {
  if (!range) return "";
  if ("minLength" in range) return `${range.minLength}..${range.maxLength} characters`;
  if ("exclusiveMinimum" in range) return `> ${range.exclusiveMinimum} and <= ${range.maximum}`;
  return `${range.minimum}..${range.maximum}`;
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.textContent = text;
  return node;
}

/**
 * A labelled input for one request field, appended to `container`: a number input with the range as min/max, a
 * checkbox for a boolean, a text input otherwise; the range and default said under it. The form has novalidate:
 * the service judges every value, and its answer is what the page shows.
 */
export function addField(container, prefix, name, property) {
  const range = property["x-range"];
  const fallback = property["x-default"];
  const input = element("input");
  if (property.type === "boolean") {
    input.type = "checkbox";
    input.checked = fallback === true;
  } else if (property.type === "integer" || property.type === "number") {
    input.type = "number";
    input.step = property.type === "integer" ? "1" : "any";
    if (range && "maximum" in range) input.max = range.maximum;
    if (range && ("minimum" in range || "exclusiveMinimum" in range)) input.min = range.minimum ?? range.exclusiveMinimum;
    if (fallback !== undefined) input.value = fallback;
    input.dataset.kind = "number";
  } else {
    input.type = "text";
    if (range?.maxLength) input.maxLength = range.maxLength;
    if (fallback) input.value = fallback;
  }
  return labelled(container, prefix, name, property, input);
}

/** A labelled <select> for one request field, its options set later (choose); said under it as addField says. */
export function addChoice(container, prefix, name, property) {
  return labelled(container, prefix, name, property, element("select"));
}

/** Sets a select's options to `values` (value and label pairs), keeping its choice when it is still offered. */
export function choose(select, values, preferred) {
  const kept = select.value || preferred;
  select.replaceChildren(...values.map(([value, label]) => new Option(label, value)));
  if (values.some(([value]) => value === kept)) select.value = kept;
}

function labelled(container, prefix, name, property, input) {
  const id = `${prefix}-${name}`;
  const row = element("div", {class: input.type === "checkbox" ? "field check" : "field"});
  const range = property["x-range"];
  const fallback = property["x-default"];
  const said = [rangeText(range), fallback !== undefined ? `default ${JSON.stringify(fallback)}` : ""]
    .filter(Boolean).join(", ");
  const help = element("small", {id: `${id}-help`}, said || property.description || "");
  if (property.description) help.title = property.description;
  const problem = element("small", {id: `${id}-error`, class: "field-error", role: "alert"});
  Object.assign(input, {id, name});
  input.dataset.request = "";
  input.setAttribute("aria-describedby", `${id}-help ${id}-error`);
  const edited = () => { // an edited value is no longer the one the service refused
    input.removeAttribute("aria-invalid");
    problem.textContent = "";
  };
  input.addEventListener("input", edited);
  input.addEventListener("change", edited);
  row.append(element("label", {for: id}, name), input, help, problem);
  container.append(row);
  return input;
}

/**
 * The JSON body a form's request fields (those marked data-request) make: numbers as numbers, an emptied field left
 * out (its default applies), a disabled one not sent.
 */
export function formBody(form) {
  const body = {};
  for (const input of form.querySelectorAll("[data-request]")) {
    if (input.matches(":disabled")) continue;
    if (input.type === "checkbox") {
      body[input.name] = input.checked;
    } else if (input.value.trim() !== "") {
      body[input.name] = input.dataset.kind === "number" ? Number(input.value) : input.value;
    } else if (input.dataset.kind === "number" && input.validity.badInput) {
      body[input.name] = "not a number"; // let the gateway say why, naming the field
    }
  }
  return body;
}

/** Clears what showError set on `form`. */
export function clearErrors(form, summary) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const problem of form.querySelectorAll(".field-error")) problem.textContent = "";
  summary.textContent = "";
  summary.hidden = true;
}

/**
 * An error in place: the Status code and message in `summary`, and each field it names marked on its input with
 * the service's own description (a field not on the form is named in the summary).
 */
export function showError(form, summary, error) {
  clearErrors(form, summary);
  const named = (error.fields || []).map((violation) => violation.field).filter(Boolean);
  summary.textContent = `${error.codeName || "Error"}: ${error.message}` + (named.length ? ` (field: ${named.join(", ")})` : "");
  summary.hidden = false;
  for (const violation of error.fields || []) {
    const input = form.querySelector(`[name="${CSS.escape(violation.field)}"]:not(:disabled)`); // the shown kind's
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    const problem = form.querySelector(`#${CSS.escape(input.id)}-error`);
    if (problem) problem.textContent = violation.description || error.message;
  }
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
}
