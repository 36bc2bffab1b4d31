"""Assembles the Apache Kafka broker's classpath from Maven Central, once per version.

Kafka publishes its broker as `org.apache.kafka:kafka_2.13`; its runtime dependencies are the whole
broker classpath. It ships no logging backend, so slf4j-reload4j + reload4j are added. Maven
resolves everything into one folder, `<kafka_cache>/kafka-<version>/lib`, which is reused by every
state directory. Maven itself caches in `~/.m2`, and users with their own mirror configure Maven as
they always do: no repository address appears here.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tidemark.core.exceptions import LocalBrokerError

INSTALL_HINT = "on Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.7.1:copy-dependencies"
LOGGING_BACKEND = (
    ("org.slf4j", "slf4j-reload4j", "1.7.36"),
    ("ch.qos.reload4j", "reload4j", "1.2.25"),
)
MAVEN_TIMEOUT_S = 900

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.tidemark</groupId>
  <artifactId>tidemark-kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""
_DEPENDENCY = "    <dependency><groupId>{0}</groupId><artifactId>{1}</artifactId><version>{2}</version></dependency>"


def require_tool(name: str, purpose: str) -> str:
    """The absolute path of `name` on PATH, or an error saying which packages to install."""
    found = shutil.which(name)
    if found is None:
        raise LocalBrokerError(
            f"`{name}` not found on PATH; it is needed to {purpose}. Install Java 17 and Maven "
            f"({INSTALL_HINT}), or set TIDEMARK_BOOTSTRAP to use an existing Kafka cluster"
        )
    return found


def pom_for(version: str) -> str:
    coordinates = (("org.apache.kafka", "kafka_2.13", version), *LOGGING_BACKEND)
    return _POM.format(dependencies="\n".join(_DEPENDENCY.format(*c) for c in coordinates))


class KafkaDistribution:
    """The broker's jars for one Kafka version under `cache_dir`."""

    def __init__(self, cache_dir: Path, version: str) -> None:
        self.version = version
        self.home = cache_dir.expanduser().resolve() / f"kafka-{version}"
        self.lib = self.home / "lib"

    @property
    def classpath(self) -> str:
        return str(self.lib / "*")

    def is_assembled(self) -> bool:
        return (self.lib / f"kafka_2.13-{self.version}.jar").is_file()

    def ensure(self) -> Path:
        """Resolve the jars with Maven unless already cached; returns the lib folder."""
        if self.is_assembled():
            return self.lib
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if not self.is_assembled():
                self._assemble()
        return self.lib

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Two processes assembling the same version at once wait for each other."""
        with open(self.home / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _assemble(self) -> None:
        mvn = require_tool("mvn", f"download Apache Kafka {self.version} from Maven Central")
        with tempfile.TemporaryDirectory(prefix="tidemark-kafka-pom-") as work:
            pom = Path(work) / "pom.xml"
            pom.write_text(pom_for(self.version))
            staging = Path(tempfile.mkdtemp(prefix="lib.", dir=self.home))
            command = [
                mvn, "-B", "-q", "-f", str(pom), DEPENDENCY_PLUGIN,
                "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
            ]  # fmt: skip
            try:
                result = subprocess.run(
                    command, check=False, cwd=work, capture_output=True, text=True,
                    timeout=MAVEN_TIMEOUT_S, stdin=subprocess.DEVNULL,
                )  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise LocalBrokerError(
                    f"Maven did not resolve Kafka {self.version} within {MAVEN_TIMEOUT_S} s; "
                    "check network access to your Maven repository (~/.m2/settings.xml)"
                ) from exc
            if result.returncode != 0 or not (staging / f"kafka_2.13-{self.version}.jar").is_file():
                shutil.rmtree(staging, ignore_errors=True)
                tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
                raise LocalBrokerError(
                    f"Maven could not resolve org.apache.kafka:kafka_2.13:{self.version} "
                    f"(exit {result.returncode}); check TIDEMARK_KAFKA_VERSION and network access "
                    f"to your Maven repository:\n{tail}"
                )
            if self.lib.exists():
                shutil.rmtree(self.lib)
            os.replace(staging, self.lib)
