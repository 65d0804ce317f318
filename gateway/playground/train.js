// Train: SFT and RL jobs started from a form built from /openapi.json (the adapter a job publishes named and checked
// here first, RL's from_adapter chosen among the published ones), and one job's progress watched live from
// GET /llm/jobs/{id}/events; the job list below it (jobs.js).

import {ApiError, bearer, callJson, streamLines} from "./api.js";
import {Curve} from "./curve.js";
import {addChoice, addField, choose, clearErrors, formBody, requestFields, showError} from "./forms.js";
import {FINISHED, JobList} from "./jobs.js";

const KINDS = {sft: {path: "/llm/train_sft", metric: "loss"}, rl: {path: "/llm/train_rl", metric: "reward"}};
// The trainer's rule for the adapter a job publishes (NEW_NAME in services/common/adapters.py), in its words: a
// name it would refuse is not sent. Whatever it refuses all the same is shown as it says it.
const NEW_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const NEW_NAME_RULE = "lower-case letters, digits, '-' and '_', at most 64 characters, not 'base'";

function nameProblem(name) {
  if (name === undefined || (NEW_NAME.test(name) && name !== "base")) return null;
  return `adapter must be ${NEW_NAME_RULE} (got '${name}')`;
}

export class TrainPanel {
  constructor(root, onPublished) {
    this.form = root.querySelector("#train-form");
    this.summary = this.form.querySelector(".form-error");
    this.token = document.querySelector("#api-key"); // read when sending; never stored anywhere
    this.names = root.querySelector("#adapter-names"); // the published ones, offered to the adapter fields
    this.progress = root.querySelector("#job-progress");
    this.curve = new Curve(root.querySelector("#curve"), root.querySelector("#curve-summary"));
    this.jobs = new JobList(root, this.token, (job) => this.watch(job), onPublished);
    this.watching = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
    for (const radio of this.form.elements.kind) radio.addEventListener("change", () => this.showKind());
  }

  async init() {
    for (const [kind, {path}] of Object.entries(KINDS)) {
      const fieldset = this.form.querySelector(`fieldset[data-kind="${kind}"]`);
      const fields = await requestFields("POST", path);
      for (const [name, property] of Object.entries(fields)) {
        if (name === "from_adapter") {
          this.fromAdapter = addChoice(fieldset, `train-${kind}`, name, property);
          this.fromDefault = property["x-default"];
        } else {
          const input = addField(fieldset, `train-${kind}`, name, property);
          if (name === "adapter") input.setAttribute("list", this.names.id);
        }
      }
    }
    this.showKind();
    await this.jobs.refresh();
  }

  /** Offers the adapters GET /llm/adapters lists: their names to the adapter fields, their published ones (and
   * the default, always, so that the service can say why it has nothing to start from) to from_adapter. */
  offerAdapters(adapters) {
    this.names.replaceChildren(...adapters.map((adapter) => new Option(adapter.name)));
    if (!this.fromAdapter) return;
    const published = adapters.filter((adapter) => adapter.serving_version).map((adapter) => [adapter.name, adapter.name]);
    if (this.fromDefault && !published.some(([name]) => name === this.fromDefault)) {
      published.unshift([this.fromDefault, `${this.fromDefault} (no version published)`]);
    }
    choose(this.fromAdapter, published, this.fromDefault);
  }

  get kind() {
    return this.form.elements.kind.value;
  }

  showKind() {
    for (const fieldset of this.form.querySelectorAll("fieldset[data-kind]")) {
      const shown = fieldset.dataset.kind === this.kind;
      fieldset.hidden = !shown;
      fieldset.disabled = !shown; // a disabled field is not sent
    }
  }

  async start() {
    clearErrors(this.form, this.summary);
    const body = formBody(this.form);
    const problem = nameProblem(body.adapter);
    if (problem) {
      showError(this.form, this.summary, {codeName: "Not sent", message: problem, fields: [{field: "adapter"}]});
      return;
    }
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const job = await callJson("POST", KINDS[this.kind].path, {body, headers: bearer(this.token.value)});
      this.jobs.refresh();
      this.watch(job);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showError(this.form, this.summary, error);
      if (error.codeName === "UNAUTHENTICATED") this.token.setAttribute("aria-invalid", "true");
    } finally {
      button.disabled = false;
    }
  }

  /** Follows one job's events: the progress line and the curve grow with every event until its last one. */
  async watch(job) {
    this.watching?.abort();
    const watching = this.watching = new AbortController();
    const metric = KINDS[job.kind]?.metric || "loss"; // a fine_tune job (the fine-tuning API's) logs its loss
    this.curve.reset(metric);
    this.progress.dataset.jobId = job.job_id;
    this.progress.dataset.status = job.status;
    this.progress.textContent = `${job.kind} job ${job.job_id}: ${job.status}`;
    let ending;
    try {
      ending = await streamLines("GET", `/llm/jobs/${encodeURIComponent(job.job_id)}/events`, {
        signal: watching.signal,
        isLast: (event) => FINISHED.has(event.status),
        onLine: (event) => this.show(job, event, metric),
      });
    } catch (error) {
      if (error.name === "AbortError") return;
      this.progress.dataset.status = "error";
      this.progress.textContent = `${error.codeName || "Error"}: ${error.message}`;
      return;
    }
    if (ending === "cut" && !watching.signal.aborted) {
      this.progress.dataset.status = "cut";
      this.progress.textContent += " — the event stream was cut before the job finished; press Watch to follow it again";
    }
    await this.jobs.refresh(); // which says when the job published
  }

  show(job, event, metric) {
    const {step, total_steps: total} = event.progress;
    const value = event.progress[metric];
    if (step > 0 && typeof value === "number") this.curve.add(step, value, total);
    const parts = [`${job.kind} job ${job.job_id}: ${event.status}`, `step ${step}/${total}`];
    if (typeof value === "number") parts.push(`${metric} ${value.toPrecision(4)}`);
    if (typeof event.progress.eta_seconds === "number" && !FINISHED.has(event.status)) {
      parts.push(`about ${Math.round(event.progress.eta_seconds)} s left`);
    }
    if (event.message) parts.push(event.message);
    this.progress.dataset.status = event.status;
    this.progress.textContent = parts.join(" · ");
  }
}
