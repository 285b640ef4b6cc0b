"""Registering, promoting and inspecting models, and the demo model."""

import json
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING

import click

from modelyard.cli.base import Group, main, open_registry, served_by_api
from modelyard.config import get_settings
from modelyard.formats import FORMATS
from modelyard.registry.store import PRODUCTION, ModelVersion, Registry

if TYPE_CHECKING:
    from modelyard.reports.profile import Profile

SAMPLE_OPTION = click.option(
    "--sample",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV, Parquet or JSON Lines file of real rows to verify the compiled runtime on.",
)
REFERENCE_OPTION = click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rows like the training data (CSV, Parquet, JSON Lines): the reference profile that every batch "
    "run's drift report compares with (default: the --sample rows).",
)


@main.group(cls=Group)
def demo() -> None:
    """The demo churn model."""


@demo.command("train")
@click.option("--rows", default=5000, show_default=True, help="Training rows to generate.")
@click.option(
    "--if-missing",
    is_flag=True,
    help="Do nothing when any model is registered (what starting the stack does); the sample is kept.",
)
def demo_train(rows: int, if_missing: bool) -> None:
    """Train the demo churn model, register it as `churn` and promote it to production."""
    from modelyard import demo as demo_module

    settings = get_settings()
    registry = open_registry()
    if if_missing and registry.model_names():
        sample = demo_module.write_sample(settings.data_dir)
        click.echo(f"models already registered in {registry.root.resolve()}: no demo model trained")
        if sample is not None:
            click.echo(f"sample of new customers: {sample}")
        return
    result = demo_module.train(registry, settings.data_dir, rows=rows)
    state = "already registered as" if result.reused else "registered as"
    click.echo(f"churn {state} version {result.version}, promoted to {PRODUCTION}")
    click.echo(f"holdout metrics: {json.dumps(result.metrics)}")
    if result.sample_path is not None:
        click.echo(f"sample of new customers: {result.sample_path}")


@demo.command("customers")
@click.option("--rows", default=1000, show_default=True, help="Customers to generate.")
@click.option("--seed", default=11, show_default=True, help="The same seed gives the same customers.")
@click.option(
    "--drift",
    is_flag=True,
    help="Unlike the training data: monthly charges one standard deviation higher, twice the share "
    "on the premium plan (what a drift report flags).",
)
@click.option("--bad-rows", default=0, show_default=True, help="Rows with a bad or missing value.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def demo_customers(rows: int, seed: int, drift: bool, bad_rows: int, output: Path) -> None:
    """Write new demo customers to score (CSV, Parquet or JSON Lines, as OUTPUT's name says)."""
    from modelyard import demo as demo_module
    from modelyard.formats import detect_format
    from modelyard.fsutil import atomic_write_bytes
    from modelyard.tabular import write_table

    frame = demo_module.customers(rows, seed)
    if drift:
        frame = demo_module.drifted(frame, seed)
    frame = demo_module.with_bad_rows(frame, min(bad_rows, rows))
    atomic_write_bytes(output, write_table(frame, detect_format(output.name, None)))
    click.echo(f"{rows:,} {'drifted ' if drift else ''}demo customers written to {output}")


@main.group(cls=Group)
def models() -> None:
    """Register, promote and inspect model versions."""


def _parse_metric(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    metrics = {}
    for item in values:
        key, sep, value = item.partition("=")
        try:
            metrics[key] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected NAME=NUMBER, e.g. accuracy=0.91")
    return metrics


@models.command("register")
@click.argument("path", type=click.Path(exists=True, path_type=Path, allow_dash=True))
@click.option("--name", required=True, help="Model name, e.g. churn.")
@click.option("--promote", is_flag=True, help="Also make this version the production one.")
@click.option("--description", default=None, help="A line about this version.")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    callback=_parse_metric,
    help="NAME=NUMBER, repeatable: metrics to keep with the version.",
)
@click.option("--force-new", is_flag=True, help="A new version even if these bytes are registered already.")
@SAMPLE_OPTION
@REFERENCE_OPTION
@click.option("--no-compile", is_flag=True, help="Do not compile: the version is served by scikit-learn.")
@click.option(
    "--file-format",
    type=click.Choice(["joblib", "pickle"]),
    help="With PATH -, the model comes on standard input: saved by joblib.dump or pickle.dump?",
)
def models_register(
    path: Path,
    name: str,
    promote: bool,
    description: str | None,
    metrics: dict[str, float],
    force_new: bool,
    sample: Path | None,
    reference: Path | None,
    no_compile: bool,
    file_format: str | None,
) -> None:
    """Copy a fitted model (.joblib, .pkl, .pickle) into the registry as a new version, and compile
    it (ONNX, used only where verified; a model that cannot be converted is served as it is).

    PATH - reads the model from standard input (with --file-format), so that a container registers
    a file of the host without mounting it: ... run -T admin modelyard models register - ... < FILE
    """
    with ExitStack() as cleanup:
        source = None
        if str(path) == "-":
            folder = Path(cleanup.enter_context(TemporaryDirectory()))
            path, source = _from_stdin(folder, file_format), "standard input"
        elif path.is_dir():
            raise click.BadParameter(
                f"{str(path)!r} is a directory, not a model file. Mounted with `docker run -v FILE:...`? "
                "When FILE does not exist there, Docker mounts an empty directory in its place: check "
                "the path, or give the file on standard input: ... modelyard models register - < FILE",
                param_hint="PATH",
            )
        registry = open_registry()
        version = registry.register(
            path, name, description=description, metrics=metrics, force_new=force_new, source=source
        )
        _registered(registry, version, source or str(path), promote, sample, no_compile)
        rows = reference or sample
        if rows is not None and not version.reused:
            _profile(version, rows)


def _from_stdin(folder: Path, file_format: str | None) -> Path:
    """The model given on standard input, as a file of the format it says it is."""
    if file_format is None:
        raise click.UsageError("with PATH -, say what comes on standard input: --file-format joblib|pickle")
    received = folder / ("model.joblib" if file_format == "joblib" else "model.pkl")
    with received.open("wb") as sink:
        shutil.copyfileobj(sys.stdin.buffer, sink, 1 << 20)
    return received


def _registered(
    registry: Registry, version: ModelVersion, path: str, promote: bool, sample: Path | None, no_compile: bool
) -> None:
    name = version.name
    sha = version.metadata["artifact"]["sha256"][:12]
    if version.reused:
        click.echo(
            f"{path} is already registered as {name} version {version.version} (sha256 {sha}…): "
            "nothing added (--force-new registers it again)"
        )
    else:
        click.echo(f"registered {name} version {version.version} (sha256 {sha}…)")
        schema = version.schema
        if schema.generated_names:
            click.echo(
                f"it was fitted without feature names: its inputs are called {', '.join(schema.names)}; "
                "a request may also send each record as an array of values in that order"
            )
        if not no_compile:
            _compile(version, sample, again=False)
    if promote:
        registry.promote(name, version.version)
        click.echo(f"promoted {name} version {version.version} to {PRODUCTION}")
    _note_another_registry(registry, path, name)


def _note_another_registry(registry: Registry, path: str, name: str) -> None:
    """A running API that serves models this folder lacks reads another registry: say so, since
    what was just registered here is not what it serves."""
    served = served_by_api()
    missing = sorted(set(served[1]) - set(registry.model_names())) if served else []
    if served and missing:
        click.echo(
            f"note: the API at {served[0]} serves {missing}, which {registry.root.resolve()} does not "
            f"have: it reads another registry. To register into the Compose stack: "
            f"make register FILE={path} NAME={name}",
            err=True,
        )


@models.command("compile")
@click.argument("name")
@click.argument("version", type=int, required=False)
@SAMPLE_OPTION
@click.option("--again", is_flag=True, help="Compile a version compiled before once more.")
def models_compile(name: str, version: int | None, sample: Path | None, again: bool) -> None:
    """Compile VERSION (else every version not compiled yet) to ONNX, verify it against scikit-learn
    and measure both; the version's folder gains model.onnx and compiled.json (nothing else changes).
    Run it where the model volume is writable (the admin container)."""
    from modelyard.compiled.choose import read_report

    registry = open_registry()
    if version is not None:
        chosen = [registry.get(name, version)]
    else:
        chosen = [v for v in registry.versions(name) if again or read_report(v) is None]
        if not chosen:
            click.echo(f"every version of {name} is compiled already (--again compiles them once more)")
    for model_version in chosen:
        _compile(model_version, sample, again)


def _compile(model_version: ModelVersion, sample: Path | None, again: bool) -> None:
    from modelyard.compiled.compile import BULK_MARGIN, compile_registered

    settings = get_settings()
    label = f"{model_version.name} version {model_version.version}"
    click.echo(f"compiling {label} (ONNX, verified against scikit-learn)...")
    report = compile_registered(model_version, sample, settings.allow_version_mismatch, again)
    if report["runtime"] == "onnx":
        speeds = ", ".join(f"{k} {v:,} rows/s" for k, v in report["batch"]["rows_per_second"].items())
        click.echo(f"{label}: compiled runtime, {report['graph']} graph; {report['reason']}")
        speed = report["batch"]["rows_per_second"]
        click.echo(
            f"big chunks (files, batch jobs): {report['batch']['runtime']}, onnx measured at "
            f"{speed['onnx'] / speed['sklearn']:.2f}x scikit-learn's speed ({speeds}; it takes them "
            f"from {BULK_MARGIN:.2f}x)"
        )
    else:
        click.echo(f"{label}: served by scikit-learn: {report['reason']}")


@models.command("profile")
@click.argument("name")
@click.argument("version", type=int)
@click.option(
    "--reference",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path, allow_dash=True),
    help="Rows like the training data (CSV, Parquet, JSON Lines); - for standard input.",
)
@click.option(
    "--reference-format",
    type=click.Choice(sorted(FORMATS)),
    help="With --reference -, the format of what comes on standard input.",
)
@click.option("--again", is_flag=True, help="Replace the version's profile if it has one.")
def models_profile(
    name: str, version: int, reference: Path, reference_format: str | None, again: bool
) -> None:
    """Add a reference profile to VERSION: how the reference rows and the model's predictions on them
    fall into bins, which every batch run's report compares with (drift). The version's folder gains
    profile.json; nothing else changes. Run it where the model volume is writable (the admin
    container); a file of this host goes on standard input:

    docker compose run --rm -T admin modelyard models profile NAME VERSION --reference -
    --reference-format csv < reference.csv
    """
    from modelyard.reports import profile as profiles

    model_version = open_registry().get(name, version)
    if (model_version.path / profiles.PROFILE).exists() and not again:
        raise click.UsageError(
            f"{name} version {version} has a reference profile already (--again replaces it)"
        )
    settings = get_settings()
    if str(reference) != "-":
        made, invalid = profiles.profile_file(model_version, reference, settings.allow_version_mismatch)
        _profiled(model_version, made, invalid, str(reference))
        return
    if reference_format is None:
        raise click.UsageError("with --reference -, say what comes on standard input: --reference-format csv")
    content = sys.stdin.buffer.read()
    made, invalid = profiles.profile_bytes(
        model_version, content, reference_format, "standard input", settings.allow_version_mismatch
    )
    _profiled(model_version, made, invalid, "standard input")


def _profile(model_version: ModelVersion, reference: Path) -> None:
    from modelyard.reports import profile as profiles

    made, invalid = profiles.profile_file(model_version, reference, get_settings().allow_version_mismatch)
    _profiled(model_version, made, invalid, str(reference))


def _profiled(model_version: ModelVersion, made: "Profile", invalid: int, source: str) -> None:
    from modelyard.reports import profile as profiles

    profiles.write(model_version, made)
    left_out = f" ({invalid:,} invalid rows left out)" if invalid else ""
    click.echo(
        f"{model_version.name} version {model_version.version}: reference profile of {made.rows:,} rows "
        f"from {source}{left_out}; batch runs' reports compare with it"
    )


@models.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default=PRODUCTION, show_default=True, help="Alias to point at VERSION.")
def models_promote(name: str, version: int, alias: str) -> None:
    """Point an alias (production by default) at a version."""
    open_registry().promote(name, version, alias)
    click.echo(f"promoted {name} version {version} to {alias}")


@models.command("list")
def models_list() -> None:
    """Every registered model with its versions and aliases."""
    registry = open_registry()
    names = registry.model_names()
    if not names:
        click.echo(f"no models registered in {registry.root}")
        served = served_by_api()
        if served and served[1]:
            click.echo(
                f"note: the API at {served[0]} serves {sorted(served[1])}: it reads another registry; "
                "list it in the stack: docker compose run --rm admin modelyard models list",
                err=True,
            )
        return
    click.echo(f"{'MODEL':<24} {'VERSIONS':<12} ALIASES")
    for name in names:
        aliases = ", ".join(f"{alias}={v}" for alias, v in registry.aliases(name).items()) or "-"
        numbers = registry.version_numbers(name)
        click.echo(f"{name:<24} {f'{numbers[0]}..{numbers[-1]}':<12} {aliases}")


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print every version's full metadata as JSON.")
def models_show(name: str, as_json: bool) -> None:
    """A model's versions, aliases and input schema."""
    registry = open_registry()
    versions = registry.versions(name)
    aliases = registry.aliases(name)
    if as_json:
        payload = {"name": name, "aliases": aliases, "versions": [v.metadata for v in versions]}
        click.echo(json.dumps(payload, indent=2))
        return
    by_version: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(number, []).append(alias)
    click.echo(f"{name}")
    for version in versions:
        meta = version.metadata
        tags = f" [{', '.join(by_version[version.version])}]" if version.version in by_version else ""
        click.echo(
            f"  v{version.version}{tags}  {meta['created_at'][:19]}  {meta['task']}  "
            f"sklearn {meta['versions']['scikit-learn']}  metrics {json.dumps(meta['metrics'])}"
        )
        click.echo(f"      runtime: {_runtime_line(version)}")
        click.echo(f"      reference profile: {_profile_line(version)}")
    shown = next((v for v in versions if v.version == aliases.get(PRODUCTION)), versions[-1])
    which = "production" if shown.version == aliases.get(PRODUCTION) else "newest, none in production"
    click.echo(f"input schema of version {shown.version} ({which}):")
    for feature in shown.schema.features:
        extra = ""
        if feature.categories:
            others = "refused" if feature.unknown_categories == "error" else "scored with a warning"
            extra = f" one of {feature.categories} (others {others})"
        click.echo(f"  {feature.name}: {feature.dtype}{extra}{' (nullable)' if feature.nullable else ''}")


def _profile_line(version: ModelVersion) -> str:
    from modelyard.reports import profile as profiles

    profile, why_none = profiles.read(version)
    if profile is None:
        return f"none ({why_none})"
    return f"{profile.rows:,} rows ({profile.source}), made {profile.created_at[:19]}"


def _runtime_line(version: ModelVersion) -> str:
    from modelyard.compiled.choose import choose
    from modelyard.errors import RuntimeUnavailable

    try:
        choice = choose(version, get_settings().runtime)
    except RuntimeUnavailable as exc:
        return f"refused ({exc.message})"
    if choice.realtime == "onnx":
        return f"onnx ({choice.graph} graph; big chunks: {choice.bulk}): {choice.reason}"
    return f"sklearn: {choice.reason}"


@models.command("check")
def models_check() -> None:
    """Pass every registered version through the load gate with this installation's libraries.

    Exits 1, listing them, if any version would be refused (e.g. saved with another scikit-learn
    minor version): run it with a new release's image before switching to it.
    """
    from modelyard.errors import ModelyardError
    from modelyard.registry.gate import verified_bytes

    settings = get_settings()
    registry = open_registry()
    refused = 0
    for name in registry.model_names():
        for version in registry.versions(name):
            try:
                verified_bytes(version, settings.allow_version_mismatch)  # what the gate refuses
            except ModelyardError as exc:
                refused += 1
                click.echo(f"refused: {name} v{version.version}: {exc.code}: {exc.message}")
    if refused:
        sys.exit(1)
    click.echo(f"every registered version in {registry.root.resolve()} passes the load gate")
