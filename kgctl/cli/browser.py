"""`kgctl browser`: the Neo4j Browser URL with the connection filled in, and kgctl's guide and
stylesheet served on loopback for Browser's `:play` and `:style`."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import webbrowser
from pathlib import Path
from types import FrameType

import click

from kgctl.cli.output import Result, connected, json_command
from kgctl.core.errors import KgctlError


def _render(r: Result) -> None:
    if "served_requests" in r:
        click.echo(f"Stopped serving the guide after {r['served_requests']} requests.")
        return
    if r["browser_url"] is None:
        click.echo(f"NEO4J_URI points to {r['bolt_uri']}: open that server's Browser and connect to it as {r['user']}.")
    else:
        click.echo(f"Browser: {r['browser_url']}")
        click.echo(f"  connect to {r['bolt_uri']} as {r['user']}; password: `kgctl db password`")
    if r["example"]["gene"]:
        click.echo(
            f"  example gene: {r['example']['gene']}"
            + (f" (most predictions of run {r['example']['run']})" if r["example"]["run"] else "")
        )
    if "style_file" in r:
        click.echo(f"Wrote the stylesheet to {r['style_file']}")
    if "guide_url" in r:
        click.echo(
            f"Serving kgctl's guide and stylesheet on loopback until Ctrl-C; in Browser run:\n"
            f"  :play {r['guide_url']}\n  :style {r['style_url']}"
        )
    else:
        click.echo("The guide and stylesheet: `kgctl browser --serve` (see README, Explore).")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.command("browser")
@click.option("--open", "open_", is_flag=True, help="Open the URL in the default web browser.")
@click.option("--serve", is_flag=True, help="Serve the kgctl guide and GraSS stylesheet on loopback until Ctrl-C.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="The guide server's port (0: a free one).",
)
@click.option(
    "--save-style",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the stylesheet to this .grass file, to drag onto Browser.",
)
@json_command(_render)
def browser(open_: bool, serve: bool, port: int, save_style: Path | None) -> Result:
    """Print the Neo4j Browser URL with the connection details, and serve kgctl's guide.

    The URL fills in Browser's connection form (the password is `kgctl db password`). With
    --serve, a loopback server hands Browser the `:play` guide (clickable queries from the
    query library, for a gene of the graph) and the `:style` sheet (labels coloured, nodes
    captioned by name, predicted edges drawn apart from known ones); the URL then carries the
    `:play` command into the editor. With --json and --serve, the first line is the URLs and
    the last the summary.
    """
    from kgctl.graph.server import ManagedServer
    from kgctl.queries.browser import GuideServer, browser_link, example, grass

    with connected() as (settings, conn):
        found = example(conn)
        managed = ManagedServer.from_settings(settings) if settings.neo4j.managed else None
        bolt_uri = managed.bolt_uri if managed else str(settings.neo4j.uri)
        user, database = settings.neo4j.user, settings.neo4j.database
        result: Result = {
            "bolt_uri": bolt_uri,
            "user": user,
            "database": database,
            "example": found.__dict__,
            "browser_url": None,
        }
        if save_style is not None:
            try:
                save_style.write_text(grass())
            except OSError as exc:
                raise KgctlError(f"--save-style {save_style}: {exc.strerror}") from None
            result["style_file"] = str(save_style)
        if not serve:
            if managed:
                result["browser_url"] = browser_link(managed.browser_url, bolt_uri, user, database)
                if open_:
                    webbrowser.open(result["browser_url"])
            return result
        with GuideServer(found, port) as guide:
            result |= {"guide_url": guide.guide_url, "style_url": guide.style_url}
            if managed:
                result["browser_url"] = browser_link(
                    managed.browser_url, bolt_uri, user, database, f":play {guide.guide_url}"
                )
            if click.get_current_context().params.get("as_json"):
                click.echo(json.dumps({"ok": True, **result}))  # the first line; the summary last
            else:
                _render(result)
            if open_ and result["browser_url"]:
                webbrowser.open(result["browser_url"])
            signal.signal(signal.SIGTERM, _stop_on_sigterm)
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C or SIGTERM: stop serving
                threading.Event().wait()
            return {"served_requests": guide.requests}
