// Models and their versions: aliases, the runtime that serves each and why, the input schema and
// the reference profile. Read-only: the API cannot change a model (it mounts the models volume
// read-only), so each version shows the admin command that promotes it.

import { get, path } from "../api.js";
import { histogram } from "../charts.js";
import { count, failure, grid, h, replace, table, when } from "../dom.js";

const PROFILE_SHOWN = 12;

export async function render(view, [name]) {
  if (name) return detail(view, name);
  const { models } = await get("/v1/models");
  replace(view, h("h1", {}, "Models"), models.length
    ? table(["Model", "Serving", "Versions", "Aliases", ""], models.map((model) => [
      h("a", { href: `#/models/${encodeURIComponent(model.name)}` }, model.name),
      model.serving_version ? `version ${model.serving_version}` : "no version in production",
      model.versions.join(", "),
      aliases(model.aliases),
      model.serving_version ? h("a", { href: `#/try/${encodeURIComponent(model.name)}` }, "Try it") : "",
    ]), { id: "models" })
    : h("p", {}, "No model is registered yet: ", h("code", {}, "modelyard models register FILE --name NAME --promote")));
}

function aliases(byName) {
  const names = Object.keys(byName).sort();
  return names.length ? names.map((alias) => h("span", { class: "chip" }, `${alias} → ${byName[alias]}`)) : "none";
}

async function detail(view, name) {
  const model = await get(path("v1", "models", name));
  const shown = model.serving_version ?? model.versions.at(-1).version;
  const shownVersion = model.versions.find((version) => version.version === shown);
  const profile = h("div", { id: "profile" }, h("p", { class: "muted" }, "Loading…"));
  replace(view,
    h("p", { class: "crumbs" }, h("a", { href: "#/models" }, "Models"), " / ", name),
    h("h1", {}, name),
    h("p", {}, model.serving_version ? `Version ${model.serving_version} serves requests. ` : "No version is in production. ",
      "Aliases: ", aliases(model.aliases), " ",
      model.serving_version ? h("a", { href: `#/try/${encodeURIComponent(name)}` }, "Try it") : ""),
    h("h2", {}, "Versions"),
    h("p", { class: "muted" }, "The console only reads: the API mounts the models volume read-only. " +
      "Promote a version with the command beside it, on the machine that runs the stack."),
    table(["Version", "Registered", "Estimator", "Metrics", "Runtime", "Artifact", "Promote"],
      [...model.versions].reverse().map((version) => versionRow(model, version)), { id: "versions" }),
    h("h2", {}, `Input schema (version ${shown})`),
    schema(model.input_schema),
    h("h2", {}, `Reference profile (version ${shown})`),
    profile);
  if (shownVersion.reference) showProfile(profile, name, shown);
  else replace(profile, h("p", { class: "muted" }, shownVersion.reference_note));
}

function versionRow(model, version) {
  const runtime = version.runtime;
  const pointing = Object.entries(model.aliases).filter(([, v]) => v === version.version).map(([alias]) => alias);
  const promote = `docker compose run --rm admin modelyard models promote ${model.name} ${version.version}`;
  const metrics = Object.entries(version.metrics || {}).map(([key, value]) => `${key} ${Number(value).toPrecision(4)}`);
  return h("tr", { "data-version": version.version },
    h("td", {}, String(version.version), pointing.map((alias) => h("span", { class: "chip" }, alias))),
    h("td", {}, when(version.created_at)),
    h("td", {}, version.estimator, h("br"), h("small", {}, version.task, version.description ? ` · ${version.description}` : "")),
    h("td", {}, metrics.join(", ") || "none"),
    h("td", { class: "runtime" }, runtime.serving ? `${runtime.serving} (files: ${runtime.bulk})` : "cannot serve",
      h("br"), h("small", {}, runtime.reason)),
    h("td", {}, h("code", { title: version.artifact.sha256 }, version.artifact.sha256.slice(0, 12)),
      h("br"), h("small", {}, `${version.versions["scikit-learn"] ? `scikit-learn ${version.versions["scikit-learn"]}` : ""}`)),
    h("td", {}, pointing.includes("production") ? "in production" : copyable(promote)));
}

function copyable(command) {
  const button = h("button", { type: "button", class: "small", onclick: async () => {
    try {
      await navigator.clipboard.writeText(command);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
  } }, "Copy");
  return h("span", { class: "command" }, h("code", {}, command), " ", button);
}

function schema(inputSchema) {
  const rows = inputSchema.features.map((feature) => [
    feature.name,
    feature.dtype,
    feature.categories ? categories(feature) : "",
    feature.nullable ? "yes (imputed)" : "no",
    feature.example === null || feature.example === undefined ? "" : String(feature.example),
  ]);
  return h("div", {},
    inputSchema.generated_names ? h("p", { class: "muted" }, "Fitted on an array: its features are named by position.") : null,
    table(["Feature", "Type", "Values", "Missing allowed", "Example"], rows, { id: "schema" }));
}

function categories(feature) {
  const shown = feature.categories.slice(0, 12).map(String).join(", ");
  const more = feature.categories.length > 12 ? ` … ${feature.categories.length - 12} more` : "";
  const unknown = feature.unknown_categories === "error" ? "; others refused" : "; others scored, with a warning";
  return `${shown}${more}${unknown}`;
}

async function showProfile(into, name, version) {
  let profile;
  try {
    profile = await get(path("v1", "models", name, "versions", version, "profile"));
  } catch (error) {
    if (error.status !== 401) replace(into, failure(error));
    return;
  }
  const charts = (features) => features.map((feature) => h("figure", {},
    h("figcaption", {}, feature.name),
    histogram("profile", `reference of ${feature.name}`, feature.bins, [{ name: "reference", values: feature.reference, kind: "ref" }])));
  replace(into,
    h("p", {}, `${count(profile.rows)} reference rows from ${profile.source}, profiled `, when(profile.created_at), "."),
    grid([profile.prediction, ...profile.features], 1 + PROFILE_SHOWN, charts));
}
