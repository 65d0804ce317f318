// The fine-tuning panel's method choice: supervised, DPO or reinforcement, each method's fields shown (and sent) only
// while it is chosen, the request's method.<type>.hyperparameters (and a reinforcement job's grader) read from them,
// and the figure a method's job is drawn by (train_loss, or a reinforcement job's reward).

const SHARED = ["n_epochs", "batch_size", "learning_rate_multiplier"];
const HYPERPARAMETERS = {supervised: SHARED, dpo: [...SHARED, "beta"],
  reinforcement: [...SHARED, "compute_multiplier", "temperature", "max_completion_tokens", "eval_interval",
    "eval_samples"]};
const CURVE_METRIC = {supervised: "train_loss", dpo: "train_loss", reinforcement: "reward"};

/** The figure a job's curve draws, by its method. */
export function curveMetric(job) {
  return CURVE_METRIC[job.method?.type] || "train_loss";
}

/** Shows the chosen method's fieldsets (data-method) and hides, and disables, the others'. */
export function showMethod(form) {
  const method = form.elements.method.value;
  for (const fieldset of form.querySelectorAll("fieldset[data-method]")) {
    const shown = fieldset.dataset.method === method;
    fieldset.hidden = !shown;
    fieldset.disabled = !shown;
  }
}

/** A hyperparameter as the request takes it: a number, "auto" when left empty, else the text (the service says
 * why it is refused). */
function hyperparameter(text) {
  const value = text.trim();
  if (!value) return "auto";
  return Number.isFinite(Number(value)) ? Number(value) : value;
}

/** An error before sending, shaped as an ApiError's (showError takes either). */
export class NotSent extends Error {
  constructor(message, field) {
    super(message);
    Object.assign(this, {codeName: "Not sent", fields: [{field, description: message}]});
  }
}

/** The request's `method` from the form: the chosen type with its hyperparameters; a reinforcement job's grader
 * parsed from its JSON (NotSent, naming the grader field, when it is not a JSON object). */
export function methodBody(form) {
  const fields = form.elements;
  const type = fields.method.value;
  const hyperparameters = Object.fromEntries(
    HYPERPARAMETERS[type].map((name) => [name, hyperparameter(fields[name].value)]));
  const section = {hyperparameters};
  if (type === "reinforcement") {
    hyperparameters.skip_uniform_groups = fields.skip_uniform_groups.checked;
    let grader;
    try {
      grader = JSON.parse(fields.grader.value);
    } catch (error) {
      throw new NotSent(`the grader is not JSON: ${error.message}`, "grader");
    }
    if (grader === null || typeof grader !== "object" || Array.isArray(grader)) {
      throw new NotSent("the grader must be a JSON object, e.g. {\"type\": \"string_check\", ...}", "grader");
    }
    section.grader = grader;
  }
  return {type, [type]: section};
}

/** An API error with each param it names as the form's field: the deepest part of its path that names one
 * (method.dpo.hyperparameters.beta: beta; method.reinforcement.grader.operation: grader; method.type: method). */
export function onForm(form, error) {
  const named = (path) => path.split(".").reverse().find((part) => form.elements.namedItem(part)) || path;
  const fields = (error.fields || []).map((field) => ({...field, field: named(field.field || "")}));
  return {codeName: error.codeName, message: error.message, fields};
}
