// The playground's start: each panel builds its forms from /openapi.json, the adapters are listed, then the page is
// ready. A change to the adapters (a job published one, one was switched or deleted) lists them again everywhere.

import {AdaptersPanel} from "./adapters.js";
import {AskPanel} from "./ask.js";
import {TrainPanel} from "./train.js";
import {initWordGenerators} from "./words.js";

async function start() {
  const ask = new AskPanel(document.querySelector("#ask"));
  const train = new TrainPanel(document.querySelector("#train"), () => adaptersChanged());
  const adapters = new AdaptersPanel(document.querySelector("#adapters"), document.querySelector("#trainer-token"),
    () => adaptersChanged());
  async function adaptersChanged() {
    const listed = await adapters.refresh();
    train.offerAdapters(listed);
    await ask.refreshAdapters(listed);
  }
  await Promise.all([ask.init(), train.init(), initWordGenerators(document.querySelector("#words"))]);
  await adaptersChanged();
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  const problem = document.querySelector("#page-error");
  problem.textContent = `The playground could not start: ${error.message}`;
  problem.hidden = false;
});
