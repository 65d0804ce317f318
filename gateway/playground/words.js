// The word-level generators, bigram (POST /generate) and LSTM (POST /generate_with_rnn): a small form each, built
// from its request's fields in /openapi.json.

import {ApiError, callJson} from "./api.js";
import {addField, clearErrors, formBody, requestFields, showError} from "./forms.js";

const LEFT_OUT = new Set(["seed"]); // a playground wants a fresh sample each time

export async function initWordGenerator(form) {
  const path = form.dataset.path;
  const fields = await requestFields("POST", path);
  const holder = form.querySelector(".fields");
  for (const [name, property] of Object.entries(fields)) {
    if (!LEFT_OUT.has(name)) addField(holder, form.id, name, property);
  }
  form.elements.start_word.value ||= form.dataset.start;
  const summary = form.querySelector(".form-error");
  const output = form.querySelector("output");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, summary);
    output.textContent = "…";
    try {
      const answer = await callJson("POST", path, {body: formBody(form)});
      output.textContent = answer.generated_text;
      form.querySelector(".warning").textContent = answer.warning || "";
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      output.textContent = "";
      showError(form, summary, error);
    }
  });
}
