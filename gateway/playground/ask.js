// Ask: one question and context sent to the base model and each adapter chosen (any set of them), each answer
// streamed into its own column from POST /generate_with_llm/stream, with what the stream's final line says about it;
// or, with "show token probabilities", from POST /v1/chat/completions with each token's log probabilities.

import {ApiError, callJson, streamLines} from "./api.js";
import {EXAMPLES} from "./examples.js";
import {addField, clearErrors, formBody, requestFields, showError} from "./forms.js";
import {TokenAnswer} from "./tokens.js";

const STREAM = "/generate_with_llm/stream";
const CHAT = "/v1/chat/completions";
const ALTERNATIVES = 5; // top_logprobs: the most likely tokens listed at each place
const CHAT_NAMES = {max_tokens: "max_new_tokens"}; // the chat API's name for a field of this form, when it differs
const TUNABLE = ["max_new_tokens", "temperature"]; // the rest of the request is the question, context and adapter
// Chosen when the page opens (what it has always compared); an adapter that appears later, published while the
// page is open, is chosen when it appears.
const FIRST_CHOSEN = new Set(["base", "sft", "rl"]);

function fill(column, values) {
  for (const [name, value] of Object.entries(values)) column.querySelector(`[data-field="${name}"]`).textContent = value;
}

function newColumn(template, name) {
  const column = template.content.firstElementChild.cloneNode(true);
  column.dataset.adapter = name;
  column.querySelector(".token-details").id = `token-details-${name}`;
  column.querySelector("h3").textContent = name;
  column.querySelector("h3").id = `column-${name}`;
  column.setAttribute("aria-labelledby", `column-${name}`);
  return column;
}

function newChoice(name, onChange) {
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.value = name;
  box.id = `ask-choose-${name}`;
  box.addEventListener("change", onChange);
  label.append(box, ` ${name}`);
  return label;
}

/**
 * What can answer: the base model, every adapter the llm service's /llm/status names (sft and rl always, published
 * or not: those two fall back) and every adapter GET /llm/adapters lists (`listed`, which the llm service may not
 * have looked for yet), each with the version it serves or why none.
 */
function servable(status, listed) {
  const all = new Map([["base", {version: "the base model alone", servable: status.loaded}]]);
  for (const adapter of status.adapters || []) {
    // Published and servable: held in memory or loaded when asked (LLM_MAX_LOADED_ADAPTERS).
    const ok = adapter.loaded || Boolean(adapter.version && !adapter.error);
    all.set(adapter.name, {servable: ok, version: ok ? adapter.version
      : `none (${adapter.error || "not published"}): answers fall back`});
  }
  for (const adapter of listed) {
    if (!all.has(adapter.name)) all.set(adapter.name, {servable: true, version: adapter.serving_version});
  }
  return all;
}

export class AskPanel {
  constructor(root) {
    this.form = root.querySelector("form");
    this.summary = root.querySelector(".form-error");
    this.columns = root.querySelector(".columns");
    this.template = root.querySelector("template");
    this.statusLine = root.querySelector(".served");
    this.choices = root.querySelector(".choices");
    this.refreshed = false;
    const picker = root.querySelector("#ask-example");
    EXAMPLES.forEach((example, index) => picker.add(new Option(example.title, String(index))));
    picker.addEventListener("change", () => this.pick(EXAMPLES[Number(picker.value)]));
    this.pick(EXAMPLES[0]);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.askChosen();
    });
  }

  async init() {
    const fields = await requestFields("POST", STREAM);
    const tuning = this.form.querySelector(".tuning");
    for (const name of TUNABLE) addField(tuning, "ask", name, fields[name]);
    // The native defaults, which the chat API's differ from (its temperature is 1), for a field left empty.
    this.defaults = Object.fromEntries(TUNABLE.map((name) => [name, fields[name]["x-default"]]));
  }

  /**
   * The question as the chat API takes it, in the QA form ("Context: …" then "Question: …"), which an adapter answers
   * as /generate_with_llm does (the base model answers it as a chat); streamed, with each token's log probability.
   */
  chatBody(body, model) {
    const asked = `${body.context ? `Context: ${body.context}\n` : ""}Question: ${body.question ?? ""}`;
    return {model, messages: [{role: "user", content: asked}], stream: true, stream_options: {include_usage: true},
      logprobs: true, top_logprobs: ALTERNATIVES, max_tokens: body.max_new_tokens ?? this.defaults.max_new_tokens,
      temperature: body.temperature ?? this.defaults.temperature};
  }

  pick(example) {
    this.form.elements.question.value = example.question;
    this.form.elements.context.value = example.context;
  }

  /** The choices and columns follow /llm/status and `listed` (GET /llm/adapters' adapters): see servable. */
  async refreshAdapters(listed = []) {
    let status;
    try {
      status = await callJson("GET", "/llm/status");
      this.baseModel = status.base_model;
      this.statusLine.textContent = `Base model: ${status.base_model}${status.loaded ? "" : ` (not loaded: ${status.reason})`}`;
    } catch (error) {
      this.statusLine.textContent = `${error.codeName || "Error"}: ${error.message}`;
      status = {loaded: false, adapters: []};
    }
    const offered = servable(status, listed);
    for (const choice of [...this.choices.querySelectorAll("label")]) {
      if (!offered.has(choice.firstChild.value)) this.remove(choice);
    }
    for (const [name, {servable: ok, version}] of offered) {
      let column = this.column(name);
      if (!column) {
        this.columns.append(column = newColumn(this.template, name));
        const choice = newChoice(name, () => this.show(name));
        this.choices.append(choice);
        choice.firstChild.checked = this.refreshed || FIRST_CHOSEN.has(name);
        this.show(name);
      }
      column.querySelector(".served-version").textContent = version;
      column.dataset.version = ok && name !== "base" ? version : "";
    }
    this.refreshed = true;
  }

  column(name) {
    return this.columns.querySelector(`[data-adapter="${CSS.escape(name)}"]`);
  }

  /** A column shows while its adapter is chosen, keeping its last answer when it is not. */
  show(name) {
    this.column(name).hidden = !this.choices.querySelector(`#ask-choose-${CSS.escape(name)}`).checked;
  }

  remove(choice) {
    this.column(choice.firstChild.value)?.remove();
    choice.remove();
  }

  askChosen() {
    clearErrors(this.form, this.summary);
    const chosen = [...this.columns.children].filter((column) => !column.hidden);
    if (!chosen.length) {
      showError(this.form, this.summary, {codeName: "Not sent", message: "choose at least one model to ask"});
      return null;
    }
    const body = formBody(this.form);
    return Promise.all(chosen.map((column) => this.ask(column, body)));
  }

  async ask(column, body) {
    const answer = column.querySelector(".answer");
    const state = column.querySelector(".state");
    const probabilities = this.form.querySelector("#ask-token-probabilities").checked;
    answer.textContent = "";
    answer.classList.remove("tokens");
    column.querySelector(".token-details").hidden = true;
    column.querySelector(".token-help").hidden = !probabilities;
    column.dataset.state = "streaming";
    state.textContent = "streaming…";
    fill(column, {path: probabilities ? CHAT : STREAM, adapter: "…", version: "…", base_model: "…", tokens: "…",
      first_token: "…", format: "…", warning: ""});
    const started = performance.now();
    let firstAt = null;
    const arrived = (text) => {
      if (firstAt !== null || !text) return;
      firstAt = performance.now();
      fill(column, {first_token: `${Math.round(firstAt - started)} ms`});
    };
    try {
      const ending = await (probabilities ? this.streamTokens(column, body, arrived)
        : this.streamNative(column, body, arrived));
      column.dataset.state = ending;
      state.textContent = ending === "complete" ? "finished"
        : "cut: the stream ended without its final line, so this answer is incomplete";
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      column.dataset.state = "error";
      state.textContent = `${error.codeName}: ${error.message}`;
      error.fields = error.fields.map((violation) => ({...violation, field: CHAT_NAMES[violation.field] || violation.field}));
      showError(this.form, this.summary, error);
    }
  }

  streamNative(column, body, arrived) {
    const answer = column.querySelector(".answer");
    return streamLines("POST", STREAM, {
      body: {...body, adapter: column.dataset.adapter},
      isLast: (chunk) => Boolean(chunk.final),
      onLine: (chunk) => {
        arrived(chunk.text);
        answer.textContent += chunk.text || "";
        if (chunk.final) this.finish(column, chunk.final);
      },
    });
  }

  /**
   * The chat API's events into a TokenAnswer: the first one's text is the service's own (a QA answer's forced lead),
   * then each text piece with the tokens it came from; the last event holds the usage, or the error that ended it.
   */
  async streamTokens(column, body, arrived) {
    const tokens = new TokenAnswer(column.querySelector(".answer"), column.querySelector(".token-details"));
    let failed = null;
    const ending = await streamLines("POST", CHAT, {
      body: this.chatBody(body, column.dataset.adapter),
      events: true,
      isLast: (chunk) => Boolean(chunk.usage || chunk.error),
      onLine: (chunk) => {
        const choice = chunk.choices?.[0];
        if (choice) {
          arrived(choice.logprobs?.content?.length ? "token" : "");
          if (choice.delta.role) tokens.forced(choice.delta.content);
          tokens.addTokens(choice.logprobs?.content);
          if (!choice.delta.role) tokens.addText(choice.delta.content);
        }
        if (chunk.usage) {
          fill(column, {adapter: chunk.model, version: "—", base_model: this.baseModel || "—",
            tokens: String(chunk.usage.completion_tokens), format: "—"});
        }
        failed = chunk.error || null;
      },
    });
    tokens.finish();
    if (failed) throw new ApiError(200, {error: failed}); // the stream had begun: its status was 200
    return ending;
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
