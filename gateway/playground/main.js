// The playground's start: each panel builds its forms from /openapi.json, then the page is ready.

import {AskPanel} from "./ask.js";
import {TrainPanel} from "./train.js";
import {initWordGenerators} from "./words.js";

async function start() {
  const ask = new AskPanel(document.querySelector("#ask"));
  const train = new TrainPanel(document.querySelector("#train"), () => ask.refreshAdapters());
  await Promise.all([ask.init(), train.init(), initWordGenerators(document.querySelector("#words"))]);
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  const problem = document.querySelector("#page-error");
  problem.textContent = `The playground could not start: ${error.message}`;
  problem.hidden = false;
});
