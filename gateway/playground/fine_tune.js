// Fine-tune: a JSONL file uploaded (POST /v1/files), a job started on it (POST /v1/fine_tuning/jobs) by the method
// chosen (supervised, DPO or reinforcement: fine_tune_method.js), its train_loss (a reinforcement job's reward) drawn
// from its events as they come (GET .../events, polled), and once it succeeds its fine_tuned_model asked beside the
// base model through POST /v1/chat/completions. Only the key's own files and models are offered.

import {ApiError, callJson} from "./api.js";
import {Curve} from "./curve.js";
import {curveMetric, methodBody, NotSent, onForm, showMethod} from "./fine_tune_method.js";
import {choose, clearErrors, showError} from "./forms.js";

const ENDED = new Set(["succeeded", "failed", "cancelled"]);
const POLL_MS = 1000;

export class FineTunePanel {
  constructor(root, onPublished) {
    this.upload = root.querySelector("#upload-form");
    this.form = root.querySelector("#fine-tune-form");
    this.compare = root.querySelector("#compare-form");
    this.progress = root.querySelector("#fine-tune-progress");
    this.curve = new Curve(root.querySelector("#fine-tune-curve"), root.querySelector("#fine-tune-curve-summary"));
    this.onPublished = onPublished;
    this.upload.addEventListener("submit", (event) => { event.preventDefault(); this.send(); });
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.start(); });
    this.compare.addEventListener("submit", (event) => { event.preventDefault(); this.ask(); });
    this.form.elements.method.addEventListener("change", () => showMethod(this.form));
    showMethod(this.form);
  }

  /** The key's files and models, offered again (a new key sees its own). */
  async refresh() {
    let files, models;
    try {
      [files, models] = await Promise.all([callJson("GET", "/v1/files?purpose=fine-tune"), callJson("GET", "/v1/models")]);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      this.progress.textContent = `${error.codeName}: ${error.message}`;
      return;
    }
    const named = files.data.map((file) => [file.id, `${file.filename} (${file.id})`]);
    choose(this.form.elements.training_file, named);
    choose(this.form.elements.validation_file, [["", "none"], ...named], "");
    choose(this.form.elements.model, models.data.map((model) => [model.id, model.parent ? model.id : `${model.id} (base)`]));
  }

  async send() {
    const summary = this.upload.querySelector(".form-error");
    clearErrors(this.upload, summary);
    const [file] = this.upload.elements.file.files;
    if (!file) {
      showError(this.upload, summary, {codeName: "Not sent", message: "choose a JSONL file first", fields: [{field: "file"}]});
      return;
    }
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", file, file.name);
    try {
      const uploaded = await callJson("POST", "/v1/files", {body: form});
      this.upload.querySelector("output").textContent = `uploaded ${uploaded.id} (${uploaded.bytes} bytes)`;
      await this.refresh();
      this.form.elements.training_file.value = uploaded.id;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showError(this.upload, summary, error);
    }
  }

  async start() {
    const summary = this.form.querySelector(".form-error");
    clearErrors(this.form, summary);
    const fields = this.form.elements;
    try {
      const body = {model: fields.model.value, training_file: fields.training_file.value, method: methodBody(this.form)};
      if (fields.validation_file.value) body.validation_file = fields.validation_file.value;
      if (fields.suffix.value.trim()) body.suffix = fields.suffix.value.trim();
      this.watch(await callJson("POST", "/v1/fine_tuning/jobs", {body}));
    } catch (error) {
      if (!(error instanceof ApiError) && !(error instanceof NotSent)) throw error;
      showError(this.form, summary, onForm(this.form, error));
    }
  }

  /** Polls the job and its events until it ends: the progress line, and each step's train_loss (a reinforcement
   * job's reward) on the curve. */
  async watch(job) {
    this.watching = job.id;
    this.compare.hidden = true;
    this.curve.reset(curveMetric(job));
    for (;;) {
      let events;
      try {
        [job, events] = await Promise.all([callJson("GET", `/v1/fine_tuning/jobs/${job.id}`),
          callJson("GET", `/v1/fine_tuning/jobs/${job.id}/events?limit=1000`)]);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        this.progress.textContent = `${error.codeName}: ${error.message}`;
        return;
      }
      if (this.watching !== job.id) return; // another job is watched now
      this.show(job, events.data);
      if (ENDED.has(job.status)) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    if (job.status === "succeeded") {
      this.tuned = job.fine_tuned_model;
      this.compare.querySelector('[data-model="tuned"] h3').textContent = job.fine_tuned_model;
      this.compare.hidden = false;
      await this.refresh();
      this.onPublished();
    }
  }

  show(job, events) {
    const metric = this.curve.metric;
    const steps = events.filter((event) => event.type === "metrics" && typeof event.data?.[metric] === "number");
    for (const {data} of steps) this.curve.add(data.step, data[metric], data.total_steps);
    const parts = [`${job.method?.type || "supervised"} fine-tuning job ${job.id}: ${job.status}`];
    const latest = steps[0]?.data;
    if (latest) parts.push(`step ${latest.step}/${latest.total_steps}`, `${metric} ${latest[metric].toPrecision(4)}`);
    if (job.fine_tuned_model) parts.push(`model ${job.fine_tuned_model}`);
    if (job.error) parts.push(job.error.message);
    this.progress.dataset.status = job.status;
    this.progress.dataset.job = job.id;
    this.progress.textContent = parts.join(" · ");
  }

  /** The same message to the fine-tuned model and the base model, greedy, side by side. */
  async ask() {
    const summary = this.compare.querySelector(".form-error");
    clearErrors(this.compare, summary);
    const messages = [{role: "user", content: this.compare.querySelector("#compare-message").value}];
    await Promise.all([["tuned", this.tuned], ["base", "base"]].map(async ([column, model]) => {
      const output = this.compare.querySelector(`[data-model="${column}"] output`);
      output.textContent = "…";
      try {
        const answer = await callJson("POST", "/v1/chat/completions",
          {body: {model, messages, temperature: 0, max_tokens: 96}});
        output.textContent = answer.choices[0].message.content;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        output.textContent = `${error.codeName}: ${error.message}`;
      }
    }));
  }
}
