// A run's report: what was scored and set aside, drift scores against the thresholds, and each
// feature's bins in the run over the reference's.

import { get, path } from "../api.js";
import { histogram, horizontalBars } from "../charts.js";
import { count, grid, h, replace, share, when } from "../dom.js";

const SHOWN = 24;

export async function render(view, [jobId]) {
  const report = await get(path("v1", "jobs", jobId, "report"));
  const compared = report.features.filter((feature) => feature.psi !== null);
  const { moderate, major } = report.drift.thresholds;
  const psi = (value) => value.toFixed(3);
  const features = (list) => list.map((feature) => h("figure", { "data-feature": feature.name },
    h("figcaption", {}, feature.name, " ", h("span", { class: `status ${feature.status.replaceAll(" ", "-")}` },
      feature.psi === null ? feature.status : `${feature.status}, PSI ${psi(feature.psi)}`)),
    histogram("feature", `${feature.name}: run over reference`, feature.bins, [
      { name: "reference", values: feature.reference, kind: "ref" },
      { name: "run", values: feature.run, kind: "run" }])));
  replace(view,
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " / ", jobId, " / report"),
    h("h1", {}, `Report of job ${jobId}`),
    h("dl", { class: "summary" },
      h("dt", {}, "Model"), h("dd", {}, `${report.model} version ${report.version}`),
      h("dt", {}, "Input"), h("dd", {}, h("code", {}, report.input), " → ", h("code", {}, report.output)),
      h("dt", {}, "Started by"), h("dd", {}, report.schedule ? `schedule ${report.schedule}` : report.origin || "a submission"),
      h("dt", {}, "Finished"), h("dd", {}, when(report.finished_at)),
      h("dt", {}, "Rows"), h("dd", { id: "report-rows" }, `${count(report.rows.read)} read, ${count(report.rows.scored)} scored, ${count(report.rows.invalid)} invalid (${share(report.invalid_share)})`),
      h("dt", {}, "Reference"), h("dd", {}, report.reference
        ? [`${count(report.reference.rows)} rows from ${report.reference.source}, profiled `, when(report.reference.created_at)]
        : report.note)),
    h("h2", {}, "Drift by feature"),
    compared.length
      ? [h("p", { class: "muted" }, `Drift of each feature (${report.drift.method}), worst first: below ${moderate} it is stable, from ${major} a major shift.`),
        horizontalBars("drift", "drift of each feature", compared.map((feature) => ({ label: feature.name, value: feature.psi, kind: feature.status })), {
          marks: [{ value: moderate, label: "moderate", kind: "moderate" }, { value: major, label: "major", kind: "major" }], format: psi })]
      : h("p", { class: "muted" }, report.note || "No drift: no row was scored."),
    report.prediction ? [h("h2", {}, "Predictions"), h("div", { class: "grid" }, features([report.prediction]))] : null,
    h("h2", {}, "Invalid rows by field"),
    report.invalid.length
      ? horizontalBars("invalid", "invalid rows by field", report.invalid.map((item) => ({
        label: `${item.field ?? "(the row)"}: ${item.code}`, value: item.rows, kind: "invalid" })), { format: count })
      : h("p", { class: "muted" }, "No row was invalid."),
    h("h2", {}, "Each feature, the run over the reference"),
    report.reference ? grid(report.features, SHOWN, features) : h("p", { class: "muted" }, report.note));
}
