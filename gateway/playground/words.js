// The word-level generators, bigram (POST /generate) and LSTM (POST /generate_with_rnn): a small form each, built
// from its request's fields in /openapi.json.

import {ApiError, callJson} from "./api.js";
import {addField, clearErrors, formBody, requestFields, showError} from "./forms.js";

const GENERATORS = [
  {id: "bigram", title: "Bigram", path: "/generate", start: "the"}, // the bigram model conditions on one word
  {id: "lstm", title: "LSTM", path: "/generate_with_rnn", start: "the captain"},
];
const LEFT_OUT = new Set(["seed"]); // a playground wants a fresh sample each time

/** One form per generator, from the section's template, each ready once its fields are built. */
export function initWordGenerators(section) {
  const template = section.querySelector("template");
  return Promise.all(GENERATORS.map((generator) => {
    const form = template.content.firstElementChild.cloneNode(true);
    form.id = generator.id;
    form.querySelector("h3").textContent = generator.title;
    form.querySelector("h3").id = `${generator.id}-title`;
    form.setAttribute("aria-labelledby", `${generator.id}-title`);
    form.querySelector("button").textContent = `Generate (${generator.title})`;
    section.querySelector(".pair").append(form);
    return initWordGenerator(form, generator);
  }));
}

async function initWordGenerator(form, {path, start}) {
  const fields = await requestFields("POST", path);
  const holder = form.querySelector(".fields");
  for (const [name, property] of Object.entries(fields)) {
    if (!LEFT_OUT.has(name)) addField(holder, form.id, name, property);
  }
  form.elements.start_word.value ||= start;
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
