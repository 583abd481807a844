"""Assemble Neo4j Community, Neo4j Browser and APOC core from Maven Central into a versioned cache.

The pins live in `pom.xml` beside this file. A finished assembly has a `kgctl-install.json` marker;
building happens in a scratch folder that is renamed into place, so an interrupted install leaves
nothing half-made and a re-run is a no-op.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from kgctl.core.errors import KgctlError

POM = Path(__file__).with_name("pom.xml")
MARKER = "kgctl-install.json"
SUPPORTED_JAVA = (17, 21)
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


@dataclass(frozen=True)
class Pins:
    """The artifact versions kgctl assembles."""

    neo4j: str
    browser: str
    apoc: str


def read_pins(pom: Path = POM) -> Pins:
    props = ET.parse(pom).getroot().find("m:properties", _POM_NS)
    if props is None:
        raise KgctlError(f"{pom}: no <properties> block with the Neo4j pins")

    def prop(name: str) -> str:
        node = props.find(f"m:{name}", _POM_NS)
        if node is None or not (node.text or "").strip():
            raise KgctlError(f"{pom}: property {name} is missing")
        return (node.text or "").strip()

    return Pins(prop("neo4j.version"), prop("neo4j.browser.version"), prop("apoc.version"))


@dataclass(frozen=True)
class Distribution:
    """One assembled Neo4j: `lib/` (server and Browser jars) and `plugins/` (APOC)."""

    root: Path
    pins: Pins

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins"

    def is_installed(self) -> bool:
        try:
            marker = json.loads((self.root / MARKER).read_text())
        except (OSError, ValueError):
            return False
        return bool(marker.get("pins") == asdict(self.pins))

    def classpath(self) -> str:
        # lib before plugins: the APOC core jar bundles an old commons-lang3 that would otherwise
        # shadow the one Neo4j 5.26's commons-configuration2 needs (NoSuchMethodError at start).
        # APOC must still be on the classpath: its extension factory is found by ServiceLoader.
        return f"{self.lib}/*{os.pathsep}{self.plugins}/*"


def distribution(cache_dir: Path, pins: Pins | None = None) -> Distribution:
    pins = pins or read_pins()
    return Distribution(cache_dir / "neo4j" / f"{pins.neo4j}-apoc{pins.apoc}-browser{pins.browser}", pins)


@dataclass(frozen=True)
class Java:
    path: str
    major: int
    version: str


def find_java(explicit: str | None = None) -> Java:
    """The Java that will run Neo4j: `explicit`, else $JAVA_HOME/bin/java, else `java` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = explicit or (str(Path(java_home) / "bin" / "java") if java_home else "java")
    path = shutil.which(candidate)
    if path is None:
        raise KgctlError(
            f"Java not found ({candidate}): Neo4j 5.26 needs Java 17 or 21 "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless, or set JAVA_HOME)"
        )
    proc = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=60)
    match = re.search(r'version "(\d+)(?:\.(\d+))?[^"]*"', proc.stderr + proc.stdout)
    if proc.returncode != 0 or match is None:
        raise KgctlError(f"{path} -version failed", detail=(proc.stderr + proc.stdout).strip())
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    if major not in SUPPORTED_JAVA:
        raise KgctlError(f"{path} is Java {major}; Neo4j 5.26 runs on Java 17 or 21 only (set JAVA_HOME to one)")
    return Java(path=path, major=major, version=match.group(0).split('"')[1])


def find_maven(explicit: str | None = None) -> str:
    path = shutil.which(explicit or "mvn")
    if path is None:
        raise KgctlError(
            "Maven (mvn) not found: kgctl fetches Neo4j from Maven Central with it "
            "(Debian/Ubuntu: apt-get install maven)"
        )
    return path


@dataclass(frozen=True)
class InstallResult:
    path: Path
    pins: Pins
    already_installed: bool
    seconds: float
    jars: int


def install(
    dist: Distribution,
    *,
    mvn: str | None = None,
    java: str | None = None,
    maven_args: tuple[str, ...] = (),
) -> InstallResult:
    """Resolve the pinned artifacts with Maven into `dist.root`; a no-op when already there."""
    if dist.is_installed():
        return InstallResult(dist.root, dist.pins, True, 0.0, _count_jars(dist))
    find_java(java)  # Maven needs it too; fail on the clearer message first
    maven = find_maven(mvn)
    started = time.perf_counter()
    dist.root.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here, not at the top: `kgctl db status` reads pins but never installs

    with tempfile.TemporaryDirectory(prefix=".partial-", dir=dist.root.parent) as scratch:
        work = Path(scratch)
        shutil.copy(POM, work / "pom.xml")
        cmd = [
            maven,
            "-B",
            "-q",
            "-ntp",
            "-f",
            str(work / "pom.xml"),
            *maven_args,
            "package",
            f"-Dkgctl.lib={work / 'lib'}",
            f"-Dkgctl.plugins={work / 'plugins'}",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=work)
        except subprocess.TimeoutExpired as exc:
            raise KgctlError("Maven did not finish resolving Neo4j within 30 minutes") from exc
        if proc.returncode != 0:
            raise KgctlError(
                f"Maven could not resolve Neo4j {dist.pins.neo4j} / APOC {dist.pins.apoc} / "
                f"Browser {dist.pins.browser} (exit {proc.returncode})",
                detail=_maven_errors(proc.stdout + proc.stderr),
            )
        built = Distribution(work, dist.pins)
        seconds = time.perf_counter() - started
        jars = _count_jars(built)
        (work / MARKER).write_text(json.dumps({"pins": asdict(dist.pins), "jars": jars, "seconds": round(seconds, 1)}))
        (work / "pom.xml").unlink()
        if dist.root.exists() and not dist.is_installed():
            shutil.rmtree(dist.root)  # an unmarked leftover, e.g. removed jars
        try:
            os.rename(work, dist.root)
        except OSError:
            if not dist.is_installed():  # a concurrent install that won the race is fine
                raise
        else:
            os.mkdir(work)  # TemporaryDirectory cleans up the path it created
    return InstallResult(dist.root, dist.pins, False, seconds, jars)


def _count_jars(dist: Distribution) -> int:
    return sum(1 for folder in (dist.lib, dist.plugins) for _ in folder.glob("*.jar"))


def _maven_errors(output: str, keep: int = 15) -> str:
    lines = [line for line in output.splitlines() if line.startswith("[ERROR]") and line.strip() != "[ERROR]"]
    return "\n".join((lines or output.splitlines())[-keep:])
