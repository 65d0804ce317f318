// The playground's start: each panel builds its forms from /openapi.json (the fine-tuning panel lists the key's own
// files and models), the adapters are listed, then the page is ready. A change to the adapters (a job published one,
// one was switched or deleted) lists them again everywhere.

import {AdaptersPanel} from "./adapters.js";
import {useApiKey} from "./api.js";
import {AskPanel} from "./ask.js";
import {FineTunePanel} from "./fine_tune.js";
import {TrainPanel} from "./train.js";
import {initWordGenerators} from "./words.js";

async function start() {
  const ask = new AskPanel(document.querySelector("#ask"));
  const train = new TrainPanel(document.querySelector("#train"), () => adaptersChanged());
  const key = document.querySelector("#api-key");
  const adapters = new AdaptersPanel(document.querySelector("#adapters"), key, () => adaptersChanged());
  const fineTune = new FineTunePanel(document.querySelector("#fine-tune"), () => adaptersChanged());
  async function adaptersChanged() {
    const listed = await adapters.refresh();
    train.offerAdapters(listed);
    await ask.refreshAdapters(listed);
  }
  // A new key: what it may read is listed again (a gateway that checks keys answers 401 without one).
  key.addEventListener("input", () => {
    useApiKey(key.value);
    key.removeAttribute("aria-invalid");
  });
  key.addEventListener("change", () => {
    adaptersChanged();
    train.jobs.refresh();
    fineTune.refresh();
  });
  await Promise.all([ask.init(), train.init(), initWordGenerators(document.querySelector("#words")),
    fineTune.refresh()]);
  await adaptersChanged();
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  const problem = document.querySelector("#page-error");
  problem.textContent = `The playground could not start: ${error.message}`;
  problem.hidden = false;
});
