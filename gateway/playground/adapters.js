// Adapters: every published adapter (GET /llm/adapters) with its versions, each version's job and evaluation and
// the serving one marked; the serving version switched (POST /llm/adapters/{name}:serve), a version or a whole
// adapter deleted (DELETE), with the page's API key. A refusal is shown as the service says it.

import {ApiError, bearer, callJson} from "./api.js";

export function evaluationText(evaluation) {
  if (!evaluation) return "—";
  return `F1 ${evaluation.f1.toFixed(1)}, EM ${evaluation.exact_match.toFixed(1)}, ` +
    `format ${evaluation.format_compliance.toFixed(0)}% on ${evaluation.examples} questions`;
}

/** A new cell at the end of a table row. */
export function cell(row, text, className = "") {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(text, label, onClick) {
  const node = document.createElement("button");
  node.type = "button";
  node.textContent = text;
  node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

export class AdaptersPanel {
  /** `token`: the API key's input; `onChanged`: called after a change, and by Refresh, to list them again. */
  constructor(root, token, onChanged) {
    this.list = root.querySelector(".adapter-list");
    this.template = root.querySelector("template");
    this.problem = root.querySelector("#adapters-error");
    this.token = token;
    this.onChanged = onChanged;
    root.querySelector(".refresh").addEventListener("click", () => this.onChanged());
  }

  /** Lists them again; resolves to GET /llm/adapters' adapters ([] when it failed, which the panel says). */
  async refresh() {
    let adapters;
    try {
      adapters = (await callJson("GET", "/llm/adapters")).adapters;
      this.problem.textContent = "";
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      this.problem.textContent = `${error.codeName}: ${error.message}`;
      return [];
    }
    this.list.replaceChildren(...adapters.map((adapter) => this.card(adapter)));
    if (!adapters.length) this.list.textContent = "No adapter is published yet.";
    return adapters;
  }

  card(adapter) {
    const card = this.template.content.firstElementChild.cloneNode(true);
    const {name} = adapter;
    card.dataset.adapter = name;
    card.querySelector("h3").textContent = name;
    card.querySelector("h3").id = `adapter-${name}`;
    card.setAttribute("aria-labelledby", `adapter-${name}`);
    card.querySelector(".serving").textContent = adapter.serving_version || "no version serves";
    const problem = card.querySelector(".field-error");
    card.querySelector(".actions").append(button("Delete adapter", `Delete adapter ${name}`, () =>
      this.change(problem, "DELETE", `/llm/adapters/${encodeURIComponent(name)}`, undefined,
        `Delete adapter ${name} and its ${adapter.versions.length} version(s)?`)));
    card.querySelector("tbody").append(...adapter.versions.map((version) => this.row(name, version, problem)));
    return card;
  }

  row(name, version, problem) {
    const row = document.createElement("tr");
    row.dataset.version = version.version;
    row.dataset.serving = String(version.serving);
    cell(row, version.version).title = version.base_model ? `trained on ${version.base_model}` : "";
    cell(row, version.published_at.replace("T", " ").replace(/\.\d+Z$/, "Z"));
    cell(row, version.serving ? "serving" : "", "serving-mark");
    cell(row, version.job_id || "—");
    cell(row, evaluationText(version.evaluation), "evaluation");
    const path = `/llm/adapters/${encodeURIComponent(name)}`;
    const serve = button("Serve", `Serve ${name} version ${version.version}`, () =>
      this.change(problem, "POST", `${path}:serve`, {version: version.version}));
    serve.disabled = version.serving;
    const remove = button("Delete", `Delete ${name} version ${version.version}`, () =>
      this.change(problem, "DELETE", `${path}/versions/${encodeURIComponent(version.version)}`, undefined,
        `Delete version ${version.version} of ${name}?`));
    cell(row, "").append(serve, " ", remove);
    return row;
  }

  async change(problem, method, path, body, question) {
    if (question && !window.confirm(question)) return;
    problem.textContent = "";
    try {
      await callJson(method, path, {body, headers: bearer(this.token.value)});
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      problem.textContent = `${error.codeName}: ${error.message}`;
      if (error.codeName === "UNAUTHENTICATED") this.token.setAttribute("aria-invalid", "true");
      return;
    }
    await this.onChanged();
  }
}
