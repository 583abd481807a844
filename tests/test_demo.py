"""The demo end to end on one demo graph per module: what a new user sees in Neo4j Browser
(driven in headless Chromium: login, kgctl's guide and stylesheet, a named query for the demo
gene showing its predicted edges) and the whole CAL loop (CAL beats cosine on the held-out node
split, write-back, report, queries, `kgctl runs delete`)."""

import html
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kgctl import queries
from kgctl.graph.connection import Connection
from kgctl.graph.schema import apply_schema
from kgctl.testing.fixtures import TestServer, cli_json, graph_counts, skip_or_fail, wipe

pytestmark = [pytest.mark.model("cal"), pytest.mark.slow]

ARTIFACTS = Path(os.environ.get("KGCTL_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
WAIT = 180  # seconds for any one thing to appear in the page: room for a slow, loaded CI machine


@pytest.fixture(scope="module")
def demo_graph(neo4j_server: TestServer) -> Iterator[tuple[dict[str, Any], Connection]]:
    """`kgctl demo --json` on an empty graph, and a connection to it (the tests below share it,
    the Browser test first: the end-to-end test deletes the runs at its end)."""
    with neo4j_server.connect() as conn:
        wipe(conn)
        apply_schema(conn)
        yield cli_json(neo4j_server.env, "demo"), conn


def chromium() -> Any:
    """Headless Debian Chromium through its chromedriver (no browser download); skipped with the
    reason where either is missing (`make test` installs them with apt), failed under CI."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        skip_or_fail(
            "Debian chromium and chromium-driver are not installed (make test installs them with apt-get when it can)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1600,1100",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_browser_shows_the_demo_genes_predicted_edges(
    demo_graph: tuple[dict[str, Any], Connection], neo4j_server: TestServer, tmp_path: Path
) -> None:
    """As a new user: `kgctl browser --serve`, log in with the managed credentials, play the
    guide, load the stylesheet, draw the demo gene's neighbourhood and run the gene-neighbourhood
    query from the guide; the table lists exactly the predicted partners the query returns."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    demo, conn = demo_graph
    served = subprocess.Popen(
        [sys.executable, "-m", "kgctl.cli", "browser", "--serve", "--json"],
        env=neo4j_server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    driver: Any = None
    try:
        assert served.stdout is not None
        info = json.loads(served.stdout.readline())
        gene = info["example"]["gene"]
        assert info["example"]["run"] == demo["run_id"] and gene
        assert info["browser_url"].startswith(neo4j_server.server.browser_url)
        assert neo4j_server.server.password() not in json.dumps(info)
        driver = chromium()
        wait = WebDriverWait(driver, WAIT)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

        def element(css: str) -> Any:
            return wait.until(lambda _: driver.find_element(By.CSS_SELECTOR, css))

        def editor() -> str:
            return str(element("[data-testid=activeEditor]").text)

        def run(command: str) -> Any:
            """Press the editor's run button; the new frame of the command that starts so, once it
            appears (Browser adds frames of its own too, such as `:play start` after connecting)."""
            before = {f.id for f in driver.find_elements(By.CSS_SELECTOR, "article[data-testid=frame]")}
            element("[data-testid=editor-Run]").click()

            def new_frame(_: Any) -> Any:
                return next(
                    (
                        f
                        for f in driver.find_elements(By.CSS_SELECTOR, "article[data-testid=frame]")
                        if f.id not in before and command in f.text
                    ),
                    None,
                )

            return wait.until(new_frame)

        def click_runnable(start: str) -> None:
            """Click the guide's visible code block that starts so; it lands in the editor."""

            def shown(_: Any) -> Any:
                return next(
                    (
                        p
                        for p in guide.find_elements(By.CSS_SELECTOR, "pre.runnable")
                        if p.is_displayed() and p.text.startswith(start)
                    ),
                    None,
                )

            wait.until(shown).click()
            wait.until(lambda _: start[:12] in editor())

        def slide(title: str) -> None:
            for _ in range(len(queries.available()) + 3):
                if title in [h.text for h in guide.find_elements(By.CSS_SELECTOR, ".slide h3") if h.is_displayed()]:
                    return
                guide.find_element(By.CSS_SELECTOR, "[data-testid=nextSlide]").click()
            raise AssertionError(f"the guide has no slide {title!r}")

        driver.get(info["browser_url"])
        wait.until(lambda _: f":play {info['guide_url']}" in editor())  # waiting in the editor
        element("[data-testid=password]").send_keys(neo4j_server.server.password() + Keys.ENTER)
        wait.until(lambda _: not driver.find_elements(By.CSS_SELECTOR, "[data-testid=password]"))
        guide = run(":play")
        wait.until(lambda _: guide.find_elements(By.CSS_SELECTOR, "pre.runnable"))
        assert gene in guide.text and demo["run_id"] in guide.text

        click_runnable(":style")
        style = run(":style")  # the stylesheet Browser now uses, fetched from the guide server
        wait.until(lambda _: "relationship.PREDICTED_ASSOCIATION" in style.text)
        slide("A gene and its partners")
        click_runnable(":param")
        run(":param gene")
        click_runnable("MATCH (g:Gene")
        drawn = run("MATCH (g:Gene")
        wait.until(lambda _: drawn.find_elements(By.CSS_SELECTOR, "svg g.relationship"))
        # Predicted edges are drawn in the stylesheet's colour, apart from the grey known ones.
        wait.until(lambda _: drawn.find_elements(By.CSS_SELECTOR, 'svg g.relationship [fill="#E0245E"]'))
        assert "PREDICTED_ASSOCIATION" in drawn.text and "INTERACTS_WITH" in drawn.text
        driver.save_screenshot(str(ARTIFACTS / "browser-graph.png"))

        slide("gene-neighbourhood")
        click_runnable(":param")
        run(":param gene")
        click_runnable("MATCH (g:Gene")
        table = run("MATCH (g:Gene")
        wait.until(lambda _: '"predicted"' in table.text)
        driver.save_screenshot(str(ARTIFACTS / "browser-gene-neighbourhood.png"))
        expected = queries.run("gene-neighbourhood", conn, gene=gene)
        shown = set(re.findall(r'"([^"]+)" "predicted"', table.text))
        assert shown == set(expected[expected.kind == "predicted"].partner)
        assert (ARTIFACTS / "browser-gene-neighbourhood.png").stat().st_size > 10_000

        # The run's report renders in the same browser.
        report = cli_json(
            neo4j_server.env, "runs", "show", demo["evaluated_run_id"], "--report", str(tmp_path / "report")
        )
        driver.get(Path(report["report"]).as_uri())
        wait.until(lambda _: all(img.get_property("naturalWidth") for img in driver.find_elements(By.TAG_NAME, "img")))
        top = "Math.min(...[...document.querySelectorAll('figure')].map(f => f.getBoundingClientRect().top))"
        driver.execute_script(f"window.scrollTo(0, {top} + window.scrollY - 20)")  # the plots
        driver.save_screenshot(str(ARTIFACTS / "report.png"))
    finally:
        if driver is not None:
            driver.save_screenshot(str(ARTIFACTS / "browser-last.png"))  # what a failure looked like
            driver.quit()
        served.terminate()
        served.wait(timeout=60)
    assert served.returncode == 0  # SIGTERM stops the guide server cleanly


@pytest.mark.slow
def test_demo_end_to_end(
    demo_graph: tuple[dict[str, Any], Connection], neo4j_server: TestServer, tmp_path: Path
) -> None:
    demo, graph = demo_graph
    assert demo["browser_url"] == neo4j_server.server.browser_url
    assert demo["password"] == neo4j_server.server.password()
    node, edge = demo["evaluation"]["node"], demo["evaluation"]["edge"]
    # The planted modules are hidden from expression cosine; CAL must recover them on genes it
    # never saw (seeds 42, 123, 456). Observed: 0.94 against 0.69.
    assert node["cal"]["auc"]["n"] == 3
    assert node["cal"]["auc"]["mean"] > node["cosine"]["auc"]["mean"] + 0.15
    assert node["cal"]["auc_degree_matched"]["mean"] > node["cosine"]["auc_degree_matched"]["mean"] + 0.15
    assert edge["cal"]["auc"]["mean"] > edge["cosine"]["auc"]["mean"] + 0.15
    assert node["degree_product"]["auc"]["mean"] == pytest.approx(0.5, abs=0.05)  # unseen: degree 0
    assert all(Path(p).exists() for p in demo["plots"]) and len(demo["plots"]) == 6
    assert demo["novel_candidates"] and demo["planted_truth"]["same_module"] >= 80
    partners = [r["partner"] for r in demo["novel_candidates"]]
    assert not graph.query(
        "MATCH (g:Gene {id: $g})-[:INTERACTS_WITH]-(h:Gene) WHERE h.id IN $p RETURN h.id",
        {"g": demo["gene"], "p": partners},
    )
    run_id = demo["run_id"]
    genes = graph.query("MATCH (g:Gene) WHERE g.embedding_cal_run = $id RETURN count(g) AS n", {"id": run_id})[0]["n"]
    edges = graph.query(
        "MATCH ()-[p:PREDICTED_ASSOCIATION {run: $id}]->() RETURN count(p) AS n, "
        "min(p.rank) AS lo, max(p.rank) AS hi, collect(DISTINCT p.model) AS m, "
        "collect(DISTINCT p.licence) AS l, collect(DISTINCT p.source) AS s",
        {"id": run_id},
    )[0]
    assert genes == 2000 and edges["n"] == 2000 * 10
    assert (edges["lo"], edges["hi"], edges["m"], edges["s"]) == (1, 10, ["cal"], ["kgctl cal"])
    assert edges["l"] == ["CC0-1.0"]  # the licence the demo declares for its generated inputs
    model_run = graph.query("MATCH (m:ModelRun {id: $id}) RETURN m", {"id": run_id})[0]["m"]
    assert model_run["status"] == "trained" and model_run["view"] == "gene-association"
    # The written run is the final model on every pair, trained as long as the evaluated run
    # chose on validation; the evaluated run holds the held-out figures.
    assert json.loads(model_run["config"])["split"] == "none"
    assert json.loads(model_run["metrics"])["training"]["epochs_done"] == demo["selection"]["epoch"]
    evaluated = graph.query("MATCH (m:ModelRun {id: $id}) RETURN m.metrics AS m", {"id": demo["evaluated_run_id"]})[0][
        "m"
    ]
    assert json.loads(evaluated)["evaluation"]["node"]
    report = cli_json(neo4j_server.env, "runs", "show", demo["evaluated_run_id"], "--report", str(tmp_path / "report"))
    page = Path(report["report"]).read_text()
    assert len(report["pngs"]) == 7 and all(Path(p).stat().st_size > 1000 for p in report["pngs"])
    assert page.count("data:image/png;base64,") == len(report["pngs"])
    shown = page.split('<script type="application/json" id="metrics">')[1].split("</script>")[0]
    assert json.loads(html.unescape(shown)) == json.loads(evaluated)  # the page's metrics are the run's
    cal_node = json.loads(evaluated)["evaluation"]["node"]["cal"]["auc"]
    assert f"{cal_node['mean']} ± {cal_node['sd']}" in html.unescape(page)
    assert model_run["task_sha256"] and model_run["written_back_at"]
    assert json.loads(model_run["written"])["relationships"]["count"] == 20_000
    gene = demo["gene"]
    nearest = cli_json(neo4j_server.env, "query", "nearest", "--param", f"gene={gene}", "--param", "k=5")
    assert len(nearest["rows"]) == 5 and gene not in [r["gene"] for r in nearest["rows"]]
    before = graph_counts(graph)
    deleted = cli_json(neo4j_server.env, "runs", "delete", run_id, "--yes")
    removed = (deleted["relationships"], deleted["embeddings"], deleted["model_run_nodes"])
    assert removed == (20_000, 2000, 1)
    deleted = cli_json(neo4j_server.env, "runs", "delete", demo["evaluated_run_id"], "--yes")
    assert (deleted["relationships"], deleted["embeddings"], deleted["model_run_nodes"]) == (
        0,
        0,
        1,
    )
    after = graph_counts(graph)
    assert after.get("PREDICTED_ASSOCIATION", 0) == 0 and after.get("ModelRun", 0) == 0
    assert after == {k: v for k, v in before.items() if k not in ("PREDICTED_ASSOCIATION", "ModelRun")}
