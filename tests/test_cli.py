"""The command line: --help everywhere, --json results, one-line errors, against a real Neo4j."""

import json
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kgctl.cli import cli
from kgctl.testing.fixtures import TestServer, clean_env, make_test_server, run_cli


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path, the lazily loaded ones included."""
    found = [prefix]
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", all_commands(cli), ids=lambda p: " ".join(p) or "kgctl")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


GROUPS = {("db",), ("ingest",), ("build",), ("train",), ("runs",)}


@pytest.mark.parametrize("path", [p for p in all_commands(cli) if p and p not in GROUPS], ids=" ".join)
def test_every_command_takes_json(path: tuple[str, ...]) -> None:
    assert "--json" in CliRunner().invoke(cli, [*path, "--help"]).output


@pytest.mark.model("cal")
def test_models_json_lists_each_model_with_its_view_and_writes() -> None:
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    cal = {m["name"]: m for m in listed["models"]}["cal"]
    assert cal["view"] == "gene-association" and cal["config"] == "CALConfig"
    molecules, rna = listed["by_item_kind"]["molecule"], listed["by_item_kind"]["rna"]
    assert molecules["models"] == ["infoalign"] and list(molecules["retrieval_tasks"]) == ["targets"]
    assert {"chembl2k", "biogen3k"} <= set(molecules["label_sets"]) and "random_forest" in molecules["baselines"]
    assert list(rna["baselines"]) == ["onehot", "kmer3", "kmer5"] and listed["probe_heads"] == [
        "ridge",
        "logistic",
        "mlp",
    ]
    assert cal["writes"] == {
        "relationship": "(Gene)-[:PREDICTED_ASSOCIATION]->(Gene)",
        "embedding": "Gene.embedding_cal",
        "vector_index": "gene_embedding_cal",
    }
    help_text = CliRunner().invoke(cli, ["train", "cal", "--help"]).output
    for field in (
        "--pca-dim",
        "--temperature",
        "--transform [both|half]",
        "--resume RUN",
        "--nproc",
    ):
        assert field in help_text  # generated from CALConfig's fields and the platform's options


def test_status_json_on_the_managed_server(neo4j_server: TestServer) -> None:
    proc = run_cli(neo4j_server.env, "db", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["ok"] is True and status["managed"] is True and status["running"] is True
    assert status["pid"] == neo4j_server.server.pid()
    assert status["neo4j_version"].startswith("5.26.")
    assert status["bolt_uri"] == neo4j_server.server.bolt_uri
    assert status["browser_url"].endswith("/browser/")
    assert isinstance(status["node_count"], int) and isinstance(status["relationship_count"], int)
    assert status["store_size_bytes"] > 0


def test_status_json_on_an_external_server(neo4j_server: TestServer) -> None:
    env = clean_env(NEO4J_URI=neo4j_server.server.bolt_uri, NEO4J_PASSWORD=neo4j_server.server.password())
    status = json.loads(run_cli(env, "db", "status", "--json").stdout)
    assert status["managed"] is False and status["running"] is True
    assert status["neo4j_version"].startswith("5.26.")


def test_schema_json_shows_a_complete_schema(neo4j_server: TestServer) -> None:
    proc = run_cli(neo4j_server.env, "db", "schema", "--json")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["missing"] == [] and schema["version"] == schema["expected_version"]
    assert schema["applied"]["created"] == []
    assert "gene_id_unique" in {c["name"] for c in schema["constraints"]}


@pytest.mark.slow
def test_start_again_and_password(neo4j_server: TestServer) -> None:
    start = json.loads(run_cli(neo4j_server.env, "db", "start", "--json").stdout)
    assert start["already_running"] is True
    assert "already running" in run_cli(neo4j_server.env, "db", "start").stdout
    password = run_cli(neo4j_server.env, "db", "password").stdout.strip()
    assert password == neo4j_server.server.password()


def test_wrong_password_is_a_clear_error_without_traceback(neo4j_server: TestServer) -> None:
    env = clean_env(NEO4J_URI=neo4j_server.server.bolt_uri, NEO4J_PASSWORD="not-the-password")
    proc = run_cli(env, "db", "schema", "--json")
    assert proc.returncode == 1
    assert "rejected the credentials of user 'neo4j'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["ok"] is False
    status = run_cli(env, "db", "status", "--json")  # it runs and refuses us: not "not running"
    assert status.returncode == 1 and "rejected the credentials" in status.stderr
    assert json.loads(status.stdout)["ok"] is False
    managed = run_cli(
        clean_env(KGCTL_CONFIG=neo4j_server.env["KGCTL_CONFIG"], NEO4J_PASSWORD="ignored?"), "db", "schema"
    )
    assert managed.returncode == 1 and "NEO4J_PASSWORD (or [neo4j] password) is set" in managed.stderr


def test_managed_only_commands_refuse_an_external_uri() -> None:
    proc = run_cli(clean_env(NEO4J_URI="bolt://127.0.0.1:1"), "db", "start")
    assert proc.returncode == 1
    assert "kgctl can start only its own managed server" in proc.stderr


def test_bad_config_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "kgctl.toml"
    config.write_text("[server]\nbolt_prot = 1\n")
    proc = run_cli(clean_env(KGCTL_CONFIG=str(config)), "db", "status")
    assert proc.returncode == 1
    assert f"{config}: unknown key server.bolt_prot" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_install_again_is_a_noop(neo4j_server: TestServer) -> None:
    proc = run_cli(neo4j_server.env, "db", "install", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["already_installed"] is True and result["neo4j"].startswith("5.26.")
    assert result["path"] == str(neo4j_server.server.config.distribution.root)


def test_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        test_server = make_test_server(tmp_path, bolt_port=port)
        proc = run_cli(test_server.env, "db", "start")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"error: port {port} (bolt) on 127.0.0.1 is already in use by another process: "
        "stop it, or choose another port with server.bolt_port in kgctl.toml"
    ]
    assert test_server.server.pid() is None


@pytest.mark.slow
def test_start_status_stop_through_the_cli(spare_server: TestServer) -> None:
    env = spare_server.env
    started = json.loads(run_cli(env, "db", "start", "--json").stdout)
    assert started["already_running"] is False and started["schema"]["created"]
    status = json.loads(run_cli(env, "db", "status", "--json").stdout)
    assert status["running"] is True and status["pid"] == started["pid"]
    stopped = json.loads(run_cli(env, "db", "stop", "--json").stdout)
    assert stopped["was_running"] is True and stopped["pid"] == started["pid"]
    status = json.loads(run_cli(env, "db", "status", "--json").stdout)
    assert status["running"] is False and status["pid"] is None
    assert "not running" in run_cli(env, "db", "status").stdout


@pytest.mark.parametrize(
    "args",
    [
        ("export", "gene-association", "--out"),
        ("ingest", "string", "x.txt", "--rejects-dir"),
        ("download", "string", "--out"),
        ("runs", "show", "r", "--report"),
    ],
)
def test_an_output_folder_that_is_a_file_is_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    existing = tmp_path / "a-file"
    existing.write_text("keep me\n")
    proc = run_cli(clean_env(), *args, str(existing))
    assert proc.returncode == 2 and f"Directory '{existing}' is a file" in proc.stderr
    assert "Traceback" not in proc.stderr and existing.read_text() == "keep me\n"
