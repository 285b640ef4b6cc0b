// The console's frame: the key, the pages (one per #/ address), and the work a page leaves
// running (polling), which stops when another page opens.

import { get, hasKey, setKey } from "./api.js";
import { failure, h, replace } from "./dom.js";
import * as jobs from "./pages/jobs.js";
import * as models from "./pages/models.js";
import * as report from "./pages/report.js";
import * as schedules from "./pages/schedules.js";
import * as tryModel from "./pages/try.js";

const PAGES = { models, try: tryModel, jobs, schedules };
const form = document.getElementById("key");
const view = document.getElementById("view");
let current = null;

function lifecycle() {
  const life = {
    alive: true,
    // fn again `ms` after each run ends, while the page is open; a failure shows and retries
    every(ms, fn) {
      const tick = async () => {
        if (!life.alive) return;
        try {
          await fn();
          document.getElementById("page-error")?.remove();
        } catch (error) {
          if (!life.alive || error.status === 401) return;
          pageError(error);
        }
        if (life.alive) setTimeout(tick, ms);
      };
      return tick();
    },
    stop() {
      life.alive = false;
    },
  };
  return life;
}

function pageError(error) {
  let note = document.getElementById("page-error");
  if (!note) {
    note = h("div", { id: "page-error" });
    view.prepend(note);
  }
  replace(note, failure(error));
}

function address() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "jobs" && parts[2] === "report") return [report, [parts[1]], "jobs"];
  const name = PAGES[parts[0]] ? parts[0] : "models";
  return [PAGES[name], parts.slice(1), name];
}

async function show() {
  if (current) current.stop();
  const life = (current = lifecycle());
  const [page, params, name] = address();
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.page === name);
  }
  replace(view, h("p", { class: "muted" }, "Loading…"));
  try {
    await page.render(view, params, life);
  } catch (error) {
    if (life.alive && error.status !== 401) replace(view, failure(error));
  }
}

async function start() {
  form.hidden = true;
  const { key_required: keyRequired } = await (await fetch("settings.json")).json();
  if (keyRequired && !hasKey()) return askKey(false);
  try {
    await get("/v1/models");  // a key given, and refused, asks again (the "api-key-refused" event)
  } catch (error) {
    if (error.status !== 401) replace(view, failure(error));
    return;
  }
  show();
}

function askKey(refused) {
  if (current) current.stop();
  document.getElementById("key-refused").hidden = !refused;
  setKey(null);
  replace(view);
  form.hidden = false;
  document.getElementById("key-value").focus();
}

window.addEventListener("api-key-refused", () => askKey(hasKey()));
window.addEventListener("hashchange", show);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  setKey(document.getElementById("key-value").value);
  document.getElementById("key-value").value = "";
  start();
});
start();
