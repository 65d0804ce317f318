// Train: SFT and RL jobs started from a form built from /openapi.json, one job's progress watched live from
// GET /llm/jobs/{id}/events, and the job list with cancel and each published adapter's evaluation.

import {ApiError, bearer, callJson, streamLines} from "./api.js";
import {Curve} from "./curve.js";
import {addField, clearErrors, formBody, requestFields, showError} from "./forms.js";

const KINDS = {sft: {path: "/llm/train_sft", metric: "loss"}, rl: {path: "/llm/train_rl", metric: "reward"}};
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const POLL_MS = 3000;

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text;
  return td;
}

function evaluationText(evaluation) {
  if (!evaluation) return "—";
  return `F1 ${evaluation.f1.toFixed(1)}, EM ${evaluation.exact_match.toFixed(1)}, ` +
    `format ${evaluation.format_compliance.toFixed(0)}% on ${evaluation.examples} questions`;
}

export class TrainPanel {
  constructor(root, onPublished) {
    this.onPublished = onPublished;
    this.form = root.querySelector("#train-form");
    this.summary = this.form.querySelector(".form-error");
    this.token = root.querySelector("#trainer-token"); // read when sending; never stored anywhere
    this.progress = root.querySelector("#job-progress");
    this.curve = new Curve(root.querySelector("#curve"), root.querySelector("#curve-summary"));
    this.jobsBody = root.querySelector("#jobs tbody");
    this.jobsError = root.querySelector("#jobs-error");
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
      for (const [name, property] of Object.entries(fields)) addField(fieldset, `train-${kind}`, name, property);
    }
    this.showKind();
    await this.refreshJobs();
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
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const job = await callJson("POST", KINDS[this.kind].path,
        {body: formBody(this.form), headers: bearer(this.token.value)});
      this.refreshJobs();
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
    this.curve.reset(KINDS[job.kind].metric);
    const metric = KINDS[job.kind].metric;
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
    await this.refreshJobs(); // which tells the ask panel when the job published
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

  async refreshJobs() {
    clearTimeout(this.poll);
    let jobs;
    try {
      jobs = (await callJson("GET", "/llm/jobs")).jobs;
      this.jobsError.textContent = "";
    } catch (error) {
      this.jobsError.textContent = `${error.codeName || "Error"}: ${error.message}`;
      return;
    }
    this.jobsBody.replaceChildren(...jobs.map((job) => this.row(job)));
    // A job that succeeded since the last look (watched here or not) published an adapter the ask panel should show.
    const published = jobs.some((job) => job.status === "succeeded" && this.seen?.get(job.job_id) !== "succeeded");
    if (this.seen && published) this.onPublished();
    this.seen = new Map(jobs.map((job) => [job.job_id, job.status]));
    if (jobs.some((job) => !FINISHED.has(job.status))) this.poll = setTimeout(() => this.refreshJobs(), POLL_MS);
  }

  row(job) {
    const row = document.createElement("tr");
    row.dataset.jobId = job.job_id;
    row.dataset.status = job.status;
    cell(row, job.job_id);
    cell(row, job.kind);
    cell(row, job.status + (job.error ? `: ${job.error}` : ""));
    cell(row, `${job.progress.step}/${job.progress.total_steps}`);
    cell(row, job.adapter_version || "—");
    cell(row, evaluationText(job.evaluation)).className = "evaluation";
    const actions = cell(row, "");
    const watch = document.createElement("button");
    watch.type = "button";
    watch.textContent = "Watch";
    watch.setAttribute("aria-label", `Watch job ${job.job_id}`);
    watch.addEventListener("click", () => this.watch(job));
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    cancel.disabled = FINISHED.has(job.status);
    cancel.setAttribute("aria-label", `Cancel job ${job.job_id}`);
    const problem = document.createElement("span");
    problem.className = "field-error";
    problem.setAttribute("role", "alert");
    cancel.addEventListener("click", () => this.cancel(job, problem));
    actions.append(watch, " ", cancel, " ", problem);
    return row;
  }

  async cancel(job, problem) {
    try {
      await callJson("POST", `/llm/jobs/${encodeURIComponent(job.job_id)}:cancel`,
        {body: {}, headers: bearer(this.token.value)});
      await this.refreshJobs();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      problem.textContent = `${error.codeName}: ${error.message}`;
    }
  }
}
