// Try a model: a form made from its input schema (numbers, categories as choices, missing where the
// model imputes it), and a file scored whole and saved back.

import { call, fileName, get, path, save, send } from "../api.js";
import { horizontalBars } from "../charts.js";
import { failure, h, replace, table } from "../dom.js";

export async function render(view, [chosen]) {
  const { models } = await get("/v1/models");
  const served = models.filter((model) => model.serving_version);
  if (!served.length) {
    replace(view, h("h1", {}, "Try a model"), h("p", {}, "No model is in production yet."));
    return;
  }
  const name = served.some((model) => model.name === chosen) ? chosen : served[0].name;
  const model = await get(path("v1", "models", name));
  const picker = h("select", { id: "try-model", onchange: () => { location.hash = `#/try/${encodeURIComponent(picker.value)}`; } },
    served.map((m) => h("option", { value: m.name, selected: m.name === name }, m.name)));
  replace(view,
    h("h1", {}, "Try a model"),
    h("label", { class: "inline" }, "Model ", picker, ` version ${model.serving_version}`),
    h("h2", {}, "One record"),
    recordForm(name, model.input_schema.features),
    h("h2", {}, "A file"),
    fileForm(name));
}

function recordForm(name, features) {
  const inputs = features.map(input);
  const result = h("div", { id: "prediction", "aria-live": "polite" });
  const form = h("form", { id: "record", class: "fields", onsubmit: async (event) => {
    event.preventDefault();
    const record = Object.fromEntries(inputs.map((field) => [field.feature.name, field.read()]));
    replace(result, h("p", { class: "muted" }, "Scoring…"));
    try {
      const answer = await send("POST", path("v1", "models", name, "predict"), { instances: [record] });
      replace(result, prediction(answer, record));
    } catch (error) {
      replace(result, failure(error), details(error));
    }
  } },
  inputs.map((field) => field.label),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Predict")));
  return h("div", {}, form, result);
}

let fields = 0;

function input(feature) {
  const id = `feature-${(fields += 1)}`;
  const example = feature.example;
  let element;
  let read;
  if (feature.categories) {
    const values = feature.nullable ? [null, ...feature.categories] : feature.categories;
    element = h("select", { id, "data-feature": feature.name },
      values.map((value) => h("option", { selected: value === example }, value === null ? "(missing)" : String(value))));
    read = () => values[element.selectedIndex];
  } else if (feature.dtype === "number") {
    element = h("input", { id, type: "number", step: "any", required: !feature.nullable, "data-feature": feature.name,
      value: example === null || example === undefined ? "" : String(example), placeholder: feature.nullable ? "missing" : "" });
    read = () => (element.value === "" ? null : Number(element.value));
  } else {
    element = h("input", { id, type: "text", required: !feature.nullable, "data-feature": feature.name,
      value: example === null || example === undefined ? "" : String(example), placeholder: feature.nullable ? "missing" : "" });
    read = () => (element.value === "" && feature.nullable ? null : element.value);
  }
  const hint = [feature.dtype, feature.nullable ? "may be missing" : null].filter(Boolean).join(", ");
  return { feature, read, label: h("label", { for: id }, h("span", { class: "name" }, feature.name), element, h("small", {}, hint)) };
}

function prediction(answer, record) {
  const [value] = answer.predictions;
  const probabilities = answer.probabilities ? answer.probabilities[0] : null;
  return h("div", { class: "answer" },
    h("p", {}, "Prediction: ", h("strong", { id: "prediction-value" }, String(value)), ` (version ${answer.version})`),
    probabilities ? horizontalBars("probabilities", "probability of each class",
      answer.classes.map((label, i) => ({ label: String(label), value: probabilities[i] ?? 0, kind: label === value ? "run" : "ref" })),
      { format: (v) => v.toFixed(4) }) : null,
    answer.warnings.length ? table(["Field", "Warning", "Message"], answer.warnings.map((w) => [w.field ?? "", w.code, w.message ?? ""])) : null,
    h("details", {}, h("summary", {}, "Request and response"),
      h("pre", { id: "request-json" }, JSON.stringify({ instances: [record] }, null, 2)),
      h("pre", { id: "response-json" }, JSON.stringify(answer, null, 2))));
}

function details(error) {
  return error.details.length
    ? table(["Row", "Field", "Code", "Message"], error.details.map((d) => [d.row ?? "", d.field ?? "", d.code ?? "", d.message ?? ""]))
    : null;
}

function fileForm(name) {
  const file = h("input", { id: "upload-file", type: "file", accept: ".csv,.parquet,.pq,.jsonl,.ndjson", required: true });
  const result = h("div", { id: "upload-result", "aria-live": "polite" });
  const form = h("form", { id: "upload", onsubmit: async (event) => {
    event.preventDefault();
    const body = new FormData();
    body.append("file", file.files[0]);
    replace(result, h("p", { class: "muted" }, "Scoring…"));
    try {
      const response = await call("POST", path("v1", "models", name, "predict-file"), { form: body });
      const scored = fileName(response, "predictions");
      save(await response.blob(), scored);
      const warnings = JSON.parse(response.headers.get("X-Modelyard-Warnings") || "[]");
      replace(result,
        h("p", {}, "Scored by version ", response.headers.get("X-Model-Version"), ": saved as ", h("code", { id: "scored-name" }, scored), "."),
        warnings.length ? table(["Field", "Warning", "Rows"], warnings.map((w) => [w.field, w.code, String(w.count)])) : null);
    } catch (error) {
      replace(result, failure(error), details(error));
    }
  } },
  h("p", { class: "muted" }, "CSV, Parquet or JSON Lines: the same file comes back with the predictions added."),
  file, " ", h("button", { type: "submit" }, "Score the file"));
  return h("div", {}, form, result);
}
