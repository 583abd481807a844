"""`kgctl db …` (the managed Neo4j server and the schema) and `kgctl demo`."""

from __future__ import annotations

import click

from kgctl.cli.output import (
    Result,
    connect_with_spinner,
    human_bytes,
    json_command,
    progress_bar,
    spinner,
)
from kgctl.core.errors import KgctlError
from kgctl.core.settings import Settings, load_settings
from kgctl.graph.install import distribution, install
from kgctl.graph.schema import apply_schema, describe_schema
from kgctl.graph.server import ManagedServer


def _managed_server(settings: Settings, verb: str) -> ManagedServer:
    if not settings.neo4j.managed:
        raise KgctlError(
            f"NEO4J_URI (or [neo4j] uri) points to {settings.neo4j.uri}: kgctl can {verb} only its own "
            "managed server; unset it to use that one"
        )
    return ManagedServer.from_settings(settings)


# ---- kgctl db -------------------------------------------------------------------------------
@click.group("db")
def db() -> None:
    """Install, start, stop and inspect the Neo4j server; apply the schema."""


def _render_install(r: Result) -> None:
    verb = "already installed" if r["already_installed"] else f"installed in {r['seconds']:.0f} s"
    click.echo(f"Neo4j {r['neo4j']} + Browser {r['browser']} + APOC {r['apoc']}: {verb}")
    click.echo(f"  {r['path']} ({r['jars']} jars)")


@db.command("install")
@json_command(_render_install)
def db_install() -> Result:
    """Fetch Neo4j, its Browser and APOC with Maven.

    Resolves the pinned Neo4j Community, Neo4j Browser and APOC core from Maven Central into the
    kgctl cache; a no-op when they are already there.
    """
    settings = load_settings()
    with spinner("Resolving Neo4j from Maven Central"):
        result = install(distribution(settings.paths.cache_dir))
    return {
        "path": str(result.path),
        "neo4j": result.pins.neo4j,
        "browser": result.pins.browser,
        "apoc": result.pins.apoc,
        "already_installed": result.already_installed,
        "seconds": round(result.seconds, 1),
        "jars": result.jars,
    }


def _render_start(r: Result) -> None:
    if r["already_running"]:
        click.echo(f"Neo4j is already running (pid {r['pid']}).")
    else:
        click.echo(f"Neo4j started (pid {r['pid']}) in {r['start_seconds']:.1f} s.")
    click.echo(f"  Bolt:    {r['bolt_uri']}")
    click.echo(f"  Browser: {r['browser_url']}")
    click.echo(f"  Login:   user neo4j, password from `kgctl db password` ({r['password_file']})")


@db.command("start")
@json_command(_render_start)
def db_start() -> Result:
    """Start the managed Neo4j and apply the schema.

    Installs Neo4j first if needed, sets a generated password on the first start, waits until
    Bolt answers. Says so when the server is already running.
    """
    from kgctl.graph.connection import start_managed

    settings = load_settings()
    server = _managed_server(settings, "start")
    with spinner("Starting Neo4j") as update:
        result = start_managed(settings, on_wait=update)
    return {**result, "password_file": str(server.config.password_file)}


def _render_stop(r: Result) -> None:
    if not r["was_running"]:
        click.echo("Neo4j was not running.")
    else:
        how = "killed" if r["killed"] else "stopped"
        click.echo(f"Neo4j (pid {r['pid']}) {how} in {r['stop_seconds']:.1f} s.")


@db.command("stop")
@click.option("--timeout", type=float, default=None, help="Seconds to wait after SIGTERM [default: 120].")
@click.option("--force", is_flag=True, help="SIGKILL the server if it has not stopped by the timeout.")
@json_command(_render_stop)
def db_stop(timeout: float | None, force: bool) -> Result:
    """Stop the managed Neo4j.

    Sends SIGTERM and waits; past the timeout it gives up with an error, or kills the server
    with --force (the next start then runs recovery).
    """
    server = _managed_server(load_settings(), "stop")
    with spinner("Stopping Neo4j"):
        result = server.stop(force=force, timeout=timeout)
    return result


def _render_status(r: Result) -> None:
    state = "running" if r["running"] else "not running"
    where = f" (pid {r['pid']})" if r.get("pid") else ""
    click.echo(f"Neo4j: {state}{where}" + ("" if r["managed"] else f" at {r['bolt_uri']}"))
    rows = [
        ("version", r.get("neo4j_version")),
        ("bolt", r.get("bolt_uri")),
        ("browser", r.get("browser_url")),
        ("nodes", r.get("node_count")),
        ("relationships", r.get("relationship_count")),
        (
            "store",
            human_bytes(r["store_size_bytes"]) if r.get("store_size_bytes") is not None else None,
        ),
        ("home", r.get("home")),
        ("log", r.get("log_file")),
        ("error", r.get("error")),
    ]
    for name, value in rows:
        if value is not None:
            click.echo(f"  {name:<14}{value}")


@db.command("status")
@json_command(_render_status)
def db_status() -> Result:
    """Show whether Neo4j runs, and its size.

    Reports the pid, Bolt URI, Browser URL, Neo4j version, node and relationship counts and
    store size, for the managed server or the one NEO4J_URI names.
    """
    settings = load_settings()
    if settings.neo4j.managed:
        server = ManagedServer.from_settings(settings)
        result: Result = server.status()
        if not result["running"]:
            return result
    else:
        result = {"managed": False, "running": False, "bolt_uri": settings.neo4j.uri}
    from kgctl.graph.connection import CredentialsRejected, connect, server_facts  # the driver

    try:
        with connect(settings, start=False) as conn:
            result.update(server_facts(conn))
            result["running"] = True
    except CredentialsRejected:
        raise  # the server runs and refuses us: an error, not "not running"
    except KgctlError as exc:
        result["error"] = exc.message
    return result


def _render_schema(r: Result) -> None:
    click.echo(f"Schema version {r['version']} (kgctl expects {r['expected_version']})")
    if r.get("applied"):
        created = r["applied"]["created"]
        click.echo(f"  applied: {len(created)} created, {len(r['applied']['unchanged'])} already present")
    for c in r["constraints"]:
        click.echo(f"  constraint {c['name']:<40} {c['labelsOrTypes'][0]}.{','.join(c['properties'])}")
    for i in r["indexes"]:
        if not i["owningConstraint"]:
            target = f"{i['labelsOrTypes'][0]}.{','.join(i['properties'])}"
            click.echo(f"  index      {i['name']:<40} {target} [{i['state']}]")
    if r["missing"]:
        click.echo(f"  missing: {', '.join(r['missing'])}")


@db.command("schema")
@click.option(
    "--apply/--no-apply",
    default=True,
    show_default=True,
    help="Create missing constraints and indexes before showing them.",
)
@json_command(_render_schema)
def db_schema(apply: bool) -> Result:
    """Apply and show the graph schema.

    Creates missing constraints and indexes (idempotent), then lists them with the schema
    version.
    """
    with connect_with_spinner(load_settings()) as conn:
        applied = apply_schema(conn) if apply else None
        return {**describe_schema(conn), "applied": applied}


def _render_password(r: Result) -> None:
    click.echo(r["password"])


@db.command("password")
@json_command(_render_password)
def db_password() -> Result:
    """Print the managed server's password.

    The generated password of user neo4j, to log in from Neo4j Browser.
    """
    server = _managed_server(load_settings(), "show the password of")
    return {
        "user": "neo4j",
        "password": server.password(),
        "file": str(server.config.password_file),
    }


# ---- kgctl demo ------------------------------------------------------------------------------
def _render_demo(r: Result) -> None:
    _render_start(r)
    ev = r["evaluation"]
    click.echo(
        f"Demo data ingested; CAL run {r['evaluated_run_id']} chose its settings on validation and was "
        f"evaluated; the final model {r['run_id']} (all pairs) was written back. {r['seconds']:.0f} s in all."
    )
    for kind in ("node", "edge"):
        if kind in ev:
            cal, cos = ev[kind]["cal"]["auc"], ev[kind]["cosine"]["auc"]
            click.echo(
                f"  held-out {kind} split AUC: CAL {cal['mean']:.3f} ± {cal['sd'] or 0:.3f}, "
                f"cosine {cos['mean']:.3f} ± {cos['sd'] or 0:.3f} (seeds {len(r['seeds'])})"
            )
    truth = r["planted_truth"]
    click.echo(
        f"  top {truth['top_novel']} novel predictions: {truth['same_module']} join genes of the same planted module"
    )
    click.echo(f"Top novel candidates for {r['gene']} (kgctl query novel-candidates --param gene={r['gene']}):")
    for row in r["novel_candidates"]:
        truth = "same planted module" if row["same_planted_module"] else "not in its module"
        click.echo(
            f"  {row['partner']:<10} score {row['score']:.3f}  expression cosine "
            f"{row['expression_cosine']:+.3f}  ({truth})"
        )
    click.echo(f"Open {r['browser_url']} and connect to {r['bolt_uri']} as neo4j / {r['password']}")
    click.echo(f"Paste: {r['cypher']}")
    click.echo("Stop the server with: kgctl db stop")


@click.command("demo")
@json_command(_render_demo)
def demo() -> Result:
    """The whole loop on generated data: ingest, train CAL, evaluate, write back, query.

    Generates STRING files, a Perturb-seq .h5ad and molecules with planted functional modules
    that expression similarity hides; loads them into the managed Neo4j; trains CAL; evaluates
    it on held-out edge and node splits (3 seeds) against cosine, degree-product, bilinear and
    random-walk baselines; writes the top predictions back; prints the top novel candidates of
    a gene, the Browser URL and a Cypher line to paste.
    """
    from kgctl.demo import SEEDS, run_demo
    from kgctl.graph.connection import connect, server_facts, start_managed

    settings = load_settings()
    server = _managed_server(settings, "run the demo on")
    with spinner("Starting Neo4j") as update:
        result = start_managed(settings, on_wait=update)
    with connect(settings, start=False) as conn:
        result.update(server_facts(conn))
        with progress_bar() as on_progress:
            result.update(run_demo(conn, settings.paths.data_dir, on_progress=on_progress))
    return {
        **result,
        "seeds": list(SEEDS),
        "password": server.password(),
        "password_file": str(server.config.password_file),
    }
