// Batch jobs: submit a file of the data volume, follow the recent jobs live, cancel, delete, and
// download what they wrote.

import { download, get, path, send } from "../api.js";
import { count, failure, h, replace, when } from "../dom.js";

const ENDED = new Set(["finished", "failed", "canceled"]);
const FAST = 1000;
const SLOW = 4000;

export async function render(view, params, life) {
  const [{ models }, { files }] = await Promise.all([get("/v1/models"), get("/v1/files?limit=500")]);
  const list = h("div", { id: "jobs" });
  const message = h("div", { id: "job-message", "aria-live": "polite" });
  const withFiles = h("input", { type: "checkbox", id: "delete-files" });
  let busy = false;

  async function refresh() {
    const { jobs } = await get("/v1/jobs?limit=50");
    busy = jobs.some((job) => !ENDED.has(job.status));
    replace(list, jobs.length ? jobTable(jobs, actions) : h("p", { class: "muted" }, "No job yet."));
  }

  async function act(done, work) {
    try {
      await work();
      replace(message, h("p", { class: "ok" }, done));
    } catch (error) {
      replace(message, failure(error));
    }
    await refresh();
  }

  const actions = {
    cancel: (job) => act(`Job ${job.id} canceled.`, () => send("POST", path("v1", "jobs", job.id, "cancel"))),
    remove: (job) => act(`Job ${job.id} deleted${withFiles.checked ? " with its files" : ""}.`,
      () => send("DELETE", `${path("v1", "jobs", job.id)}${withFiles.checked ? "?files=true" : ""}`)),
    result: (job) => act(`Saved the output of job ${job.id}.`, () => download(path("v1", "jobs", job.id, "result"), job.output.split("/").pop())),
    errors: (job) => act(`Saved the invalid rows of job ${job.id}.`, () => download(path("v1", "jobs", job.id, "errors"), `${job.id}.errors.jsonl`)),
  };

  replace(view,
    h("h1", {}, "Jobs"),
    submitForm(models, files, (note) => act(note, async () => {})),
    message,
    h("h2", {}, "Recent jobs"),
    h("label", { class: "inline" }, withFiles, " deleting an ended job removes its output and errors files from the data volume too"),
    list);
  await refresh();
  let ticks = 0;
  life.every(FAST, async () => {
    ticks += 1;
    if (busy || ticks % (SLOW / FAST) === 0) await refresh();
  });
}

function jobTable(jobs, actions) {
  return h("table", { id: "job-table" },
    h("thead", {}, h("tr", {}, ["Job", "Model", "Input", "Status", "Progress", "Rows", "Submitted", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, jobs.map((job) => row(job, actions))));
}

function row(job, actions) {
  const percent = job.progress === null ? null : Math.round(100 * job.progress);
  const finished = job.status === "finished";
  const noValidRow = job.status === "failed" && job.error?.code === "invalid_input";
  const button = (label, action) => h("button", { type: "button", class: "small", onclick: () => action(job) }, label);
  return h("tr", { "data-job": job.id, "data-status": job.status },
    h("td", {}, h("code", { title: job.id }, job.id)),
    h("td", {}, `${job.model} v${job.version}`),
    h("td", { class: "path" }, h("span", { title: `${job.input} → ${job.output}` }, job.input)),
    h("td", {}, h("span", { class: `status ${job.status}` }, job.status), job.error ? h("small", { class: "error" }, job.error.message) : null),
    h("td", {}, h("progress", { max: 100, value: percent ?? (finished ? 100 : 0) }), " ", percent === null ? "" : `${percent}%`),
    h("td", {}, `${count(job.rows_done)}${job.rows_total === null ? "" : ` / ${count(job.rows_total)}`}`,
      job.rows_failed ? h("small", { class: "error" }, ` ${count(job.rows_failed)} invalid`) : null),
    h("td", {}, when(job.created_at)),
    h("td", { class: "actions" },
      ENDED.has(job.status) ? null : button("Cancel", actions.cancel),
      finished ? button("Result", actions.result) : null,
      finished || noValidRow ? button("Invalid rows", actions.errors) : null,
      finished ? h("a", { class: "button small", href: `#/jobs/${encodeURIComponent(job.id)}/report` }, "Report") : null,
      ENDED.has(job.status) ? button("Delete", actions.remove) : null));
}

function submitForm(models, files, submitted) {
  const model = h("select", { id: "job-model", required: true }, models.map((m) => h("option", {}, m.name)));
  const input = h("input", { id: "job-input", list: "data-files", required: true, placeholder: "incoming/customers.csv" });
  const output = h("input", { id: "job-output", placeholder: "default: scored/<job>/..." });
  const format = h("select", { id: "job-format" }, h("option", { value: "" }, "as the input"),
    ["csv", "parquet", "jsonl"].map((f) => h("option", {}, f)));
  const failFast = h("input", { type: "checkbox", id: "job-fail-fast" });
  const overwrite = h("input", { type: "checkbox", id: "job-overwrite" });
  const problem = h("div");
  return h("form", { id: "submit-job", class: "fields", onsubmit: async (event) => {
    event.preventDefault();
    const body = { model: model.value, input: input.value, fail_fast: failFast.checked, overwrite: overwrite.checked };
    if (output.value) body.output = output.value;
    if (format.value) body.format = format.value;
    try {
      const job = await send("POST", "/v1/jobs", body);
      replace(problem);
      await submitted(`Job ${job.id} queued: ${job.input} with ${job.model} version ${job.version}.`);
    } catch (error) {
      replace(problem, failure(error));
    }
  } },
  h("h2", {}, "Score a file of the data volume"),
  h("label", {}, h("span", { class: "name" }, "Model"), model),
  h("label", {}, h("span", { class: "name" }, "Input"), input,
    h("datalist", { id: "data-files" }, files.map((file) => h("option", { value: file.path }, `${file.format}, ${file.size_bytes} bytes`)))),
  h("label", {}, h("span", { class: "name" }, "Output"), output),
  h("label", {}, h("span", { class: "name" }, "Format"), format),
  h("label", { class: "inline" }, failFast, " fail at the first invalid row"),
  h("label", { class: "inline" }, overwrite, " replace the output if it exists"),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Submit")),
  problem);
}
