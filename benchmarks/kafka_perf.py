"""Kafka's own producer benchmark (`org.apache.kafka.tools.ProducerPerformance`), the ingest anchor.

The tool ships in `org.apache.kafka:kafka-tools:<version>`; Maven resolves it with its runtime
dependencies into `<kafka_cache>/kafka-tools-<version>/lib`, the way `tidemark.localkafka.distribution`
assembles the broker (no repository address here: Maven's own configuration decides).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tidemark.localkafka.distribution import DEPENDENCY_PLUGIN, LOGGING_BACKEND, require_tool

MAVEN_TIMEOUT_S = 900
_DEPENDENCY = "<dependency><groupId>{0}</groupId><artifactId>{1}</artifactId><version>{2}</version></dependency>"
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>io.tidemark</groupId><artifactId>tidemark-kafka-tools</artifactId><version>1</version>
<packaging>pom</packaging><dependencies>{}</dependencies></project>"""
_SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency")


@dataclass(frozen=True)
class PerfResult:
    records: int
    records_per_s: float
    record_size: int
    avg_latency_ms: float

    @property
    def mb_per_s(self) -> float:
        """MB = 10^6 bytes (the tool itself prints MiB/s)."""
        return self.records_per_s * self.record_size / 1e6


def tools_lib(cache: Path, version: str) -> Path:
    """The kafka-tools classpath folder, resolved with Maven on first use."""
    lib = cache.expanduser().resolve() / f"kafka-tools-{version}" / "lib"
    if (lib / f"kafka-tools-{version}.jar").is_file():
        return lib
    mvn = require_tool("mvn", f"download kafka-tools {version} (the ProducerPerformance anchor)")
    coordinates = (("org.apache.kafka", "kafka-tools", version), *LOGGING_BACKEND)
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tidemark-kafka-tools-") as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(_POM.format("".join(_DEPENDENCY.format(*c) for c in coordinates)))
        staging = Path(tempfile.mkdtemp(prefix="lib.", dir=lib.parent))
        result = subprocess.run(
            [mvn, "-B", "-q", "-f", str(pom), DEPENDENCY_PLUGIN, "-DincludeScope=runtime",
             f"-DoutputDirectory={staging}"],
            cwd=work, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                f"Maven could not resolve kafka-tools {version}: {result.stdout[-1500:]}{result.stderr[-1500:]}"
            )
        if lib.exists():
            shutil.rmtree(lib)
        staging.rename(lib)
    return lib


def producer_performance(
    lib: Path, bootstrap: str, topic: str, records: int, record_size: int, extra: dict[str, str] | None = None
) -> PerfResult:
    """Run the tool once with acks=all, idempotence on, no compression; parse its summary line."""
    java = require_tool("java", "run Kafka's ProducerPerformance")
    props = {
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": "true",
        "compression.type": "none", **(extra or {}),
    }  # fmt: skip
    command = [
        java, "-Xms256m", "-Xmx1g", "-cp", str(lib / "*"), "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
        "--throughput", "-1", "--producer-props", *(f"{k}={v}" for k, v in props.items()),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    found = _SUMMARY.findall(result.stdout)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"ProducerPerformance failed (exit {result.returncode}): {result.stderr[-1500:]}")
    sent, per_s, _mib, latency = found[-1]
    return PerfResult(int(sent), float(per_s), record_size, float(latency))
