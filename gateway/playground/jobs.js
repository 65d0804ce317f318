// The job list: every job (GET /llm/jobs) with its adapter, progress, the version it published and that version's
// evaluation; Watch follows one in the train panel, Cancel stops it. Polled while a job has not finished.

import {cell, evaluationText} from "./adapters.js";
import {ApiError, bearer, callJson} from "./api.js";

export const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const POLL_MS = 3000;

export class JobList {
  /** `token`: the API key's input; `onWatch(job)`: follow it; `onPublished()`: a job succeeded since the
   * last look (watched here or not), so an adapter has a new version. */
  constructor(root, token, onWatch, onPublished) {
    this.body = root.querySelector("#jobs tbody");
    this.problem = root.querySelector("#jobs-error");
    this.token = token;
    this.onWatch = onWatch;
    this.onPublished = onPublished;
  }

  async refresh() {
    clearTimeout(this.poll);
    let jobs;
    try {
      jobs = (await callJson("GET", "/llm/jobs")).jobs;
      this.problem.textContent = "";
    } catch (error) {
      this.problem.textContent = `${error.codeName || "Error"}: ${error.message}`;
      return;
    }
    this.body.replaceChildren(...jobs.map((job) => this.row(job)));
    const published = jobs.some((job) => job.status === "succeeded" && this.seen?.get(job.job_id) !== "succeeded");
    if (this.seen && published) this.onPublished();
    this.seen = new Map(jobs.map((job) => [job.job_id, job.status]));
    if (jobs.some((job) => !FINISHED.has(job.status))) this.poll = setTimeout(() => this.refresh(), POLL_MS);
  }

  row(job) {
    const row = document.createElement("tr");
    row.dataset.jobId = job.job_id;
    row.dataset.status = job.status;
    cell(row, job.job_id);
    cell(row, job.kind);
    const from = job.params?.rl?.from_adapter;
    cell(row, job.adapter + (from ? ` (from ${from})` : ""), "adapter");
    cell(row, job.status + (job.error ? `: ${job.error}` : ""));
    cell(row, `${job.progress.step}/${job.progress.total_steps}`);
    cell(row, job.adapter_version || "—", "version");
    cell(row, evaluationText(job.evaluation), "evaluation");
    const actions = cell(row, "");
    const watch = document.createElement("button");
    watch.type = "button";
    watch.textContent = "Watch";
    watch.setAttribute("aria-label", `Watch job ${job.job_id}`);
    watch.addEventListener("click", () => this.onWatch(job));
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
      await this.refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      problem.textContent = `${error.codeName}: ${error.message}`;
    }
  }
}
