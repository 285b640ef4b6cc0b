// Schedules as the scheduler published them: the next slot, the recent runs and how they went,
// and a run started now.

import { get, path, send } from "../api.js";
import { failure, h, replace, table, when } from "../dom.js";

const EVERY = 3000;

export async function render(view, params, life) {
  const list = h("div", { id: "schedules" });
  const message = h("div", { id: "schedule-message", "aria-live": "polite" });
  const header = h("p", { id: "scheduler" });

  async function refresh() {
    const { scheduler, schedules } = await get("/v1/schedules");
    replace(header, scheduler.alive ? "The scheduler is running; it last checked " : "The scheduler is not running",
      scheduler.last_tick ? when(scheduler.last_tick) : "", ".");
    const runs = await Promise.all(schedules.map((s) => get(`${path("v1", "schedules", s.name, "runs")}?limit=10`)));
    replace(list, schedules.length
      ? schedules.map((schedule, i) => card(schedule, runs[i].runs, runNow))
      : h("p", { class: "muted" }, "No schedule is published: they are set in the scheduler's schedules file."));
  }

  async function runNow(name, rescore) {
    try {
      const run = await send("POST", `${path("v1", "schedules", name, "run")}${rescore ? "?rescore=true" : ""}`);
      replace(message, h("p", { class: "ok" }, `Run ${run.id} of ${name}: ${run.status}, ${run.jobs.length} job(s) for ${run.files.length} file(s).`));
    } catch (error) {
      replace(message, failure(error));
    }
    await refresh();
  }

  replace(view, h("h1", {}, "Schedules"), header, message, list);
  await refresh();
  life.every(EVERY, refresh);
}

function card(schedule, runs, runNow) {
  const rescore = h("input", { type: "checkbox" });
  const version = schedule.version ? `version ${schedule.version}` : `alias ${schedule.alias || "production"}`;
  return h("section", { class: "card", "data-schedule": schedule.name },
    h("h2", {}, schedule.name),
    h("p", {}, `${schedule.cron} (${schedule.timezone}): ${schedule.model}, ${version}; `,
      h("code", {}, schedule.input), " → ", h("code", {}, schedule.output)),
    h("p", {}, "Next slot: ", when(schedule.next_run), ". ",
      h("button", { type: "button", onclick: () => runNow(schedule.name, rescore.checked) }, "Run now"), " ",
      h("label", { class: "inline" }, rescore, " score files again that it has already scored")),
    runs.length ? table(["Slot", "Started", "Status", "Files", "Jobs"], runs.map((run) => h("tr", { "data-run": run.id },
      h("td", {}, when(run.slot)),
      h("td", {}, when(run.started_at)),
      h("td", {}, h("span", { class: `status ${run.status.replaceAll(" ", "-")}` }, run.status)),
      h("td", { title: run.files.join("\n") }, `${run.files.length}${run.waiting.length ? `, ${run.waiting.length} waiting` : ""}`),
      h("td", {}, run.jobs.map((id) => h("a", { href: `#/jobs/${encodeURIComponent(id)}/report`, title: "its report" }, h("code", {}, id))))))) : h("p", { class: "muted" }, "No run yet."));
}
