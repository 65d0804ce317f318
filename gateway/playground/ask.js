// Ask: one question and context sent to the base model and every adapter at once, each answer streamed into its
// own column from POST /generate_with_llm/stream, with what the stream's final line says about it.

import {ApiError, callJson, streamLines} from "./api.js";
import {EXAMPLES} from "./examples.js";
import {addField, clearErrors, formBody, requestFields, showError} from "./forms.js";

const STREAM = "/generate_with_llm/stream";
const TUNABLE = ["max_new_tokens", "temperature"]; // the rest of the request is the question, context and adapter

function fill(column, values) {
  for (const [name, value] of Object.entries(values)) column.querySelector(`[data-field="${name}"]`).textContent = value;
}

function newColumn(template, name) {
  const column = template.content.firstElementChild.cloneNode(true);
  column.dataset.adapter = name;
  column.querySelector("h3").textContent = name;
  column.querySelector("h3").id = `column-${name}`;
  column.setAttribute("aria-labelledby", `column-${name}`);
  return column;
}

export class AskPanel {
  constructor(root) {
    this.form = root.querySelector("form");
    this.summary = root.querySelector(".form-error");
    this.columns = root.querySelector(".columns");
    this.template = root.querySelector("template");
    this.statusLine = root.querySelector(".served");
    const picker = root.querySelector("#ask-example");
    EXAMPLES.forEach((example, index) => picker.add(new Option(example.title, String(index))));
    picker.addEventListener("change", () => this.pick(EXAMPLES[Number(picker.value)]));
    this.pick(EXAMPLES[0]);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.askAll();
    });
  }

  async init() {
    const fields = await requestFields("POST", STREAM);
    const tuning = this.form.querySelector(".tuning");
    for (const name of TUNABLE) addField(tuning, "ask", name, fields[name]);
    await this.refreshAdapters();
  }

  pick(example) {
    this.form.elements.question.value = example.question;
    this.form.elements.context.value = example.context;
  }

  /** The columns follow /llm/status: the base model and every adapter, each with the version served now. */
  async refreshAdapters() {
    let status;
    try {
      status = await callJson("GET", "/llm/status");
    } catch (error) {
      this.statusLine.textContent = `${error.codeName || "Error"}: ${error.message}`;
      return;
    }
    this.statusLine.textContent = `Base model: ${status.base_model}${status.loaded ? "" : ` (not loaded: ${status.reason})`}`;
    const served = [{name: "base", loaded: status.loaded, version: "", error: status.reason},
      ...status.adapters];
    for (const adapter of served) {
      let column = this.columns.querySelector(`[data-adapter="${adapter.name}"]`);
      if (!column) this.columns.append(column = newColumn(this.template, adapter.name));
      // Published and servable: held in memory or loaded when asked (LLM_MAX_LOADED_ADAPTERS).
      const servable = adapter.loaded || (adapter.version && !adapter.error);
      const version = adapter.name === "base" ? "the base model alone" : servable ? adapter.version
        : `none (${adapter.error || "not published"}): answers fall back`;
      column.querySelector(".served-version").textContent = version;
      column.dataset.version = servable ? adapter.version : "";
    }
  }

  askAll() {
    clearErrors(this.form, this.summary);
    const body = formBody(this.form);
    return Promise.all([...this.columns.children].map((column) => this.ask(column, body)));
  }

  async ask(column, body) {
    const answer = column.querySelector(".answer");
    const state = column.querySelector(".state");
    answer.textContent = "";
    column.dataset.state = "streaming";
    state.textContent = "streaming…";
    fill(column, {adapter: "…", version: "…", base_model: "…", tokens: "…", first_token: "…", format: "…", warning: ""});
    const started = performance.now();
    let firstAt = null;
    try {
      const ending = await streamLines("POST", STREAM, {
        body: {...body, adapter: column.dataset.adapter},
        isLast: (chunk) => Boolean(chunk.final),
        onLine: (chunk) => {
          if (firstAt === null && chunk.text) {
            firstAt = performance.now();
            fill(column, {first_token: `${Math.round(firstAt - started)} ms`});
          }
          answer.textContent += chunk.text || "";
          if (chunk.final) this.finish(column, chunk.final);
        },
      });
      column.dataset.state = ending;
      state.textContent = ending === "complete" ? "finished"
        : "cut: the stream ended without its final line, so this answer is incomplete";
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      column.dataset.state = "error";
      state.textContent = `${error.codeName}: ${error.message}`;
      showError(this.form, this.summary, error);
    }
  }

  finish(column, final) {
    fill(column, {
      adapter: final.adapter,
      version: final.adapter_version || "—",
      base_model: final.base_model,
      tokens: String(final.generated_tokens),
      format: final.format_completed_by_service ? "completed by the service" : "closed by the model",
      warning: final.warning || "",
    });
    column.classList.toggle("completed-format", final.format_completed_by_service);
  }
}
