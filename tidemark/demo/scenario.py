"""The demo's story, step by step: seed a real ext4 filesystem through the NBD tracker, change
it (a real trace on a second volume, file changes on the first), then prove the mirror can give
every recovery point back: verify, mount, test failover, revert.

Why the trace goes to a second volume: a trace's writes land at arbitrary offsets and would
corrupt the ext4 filesystem, and one volume has one tracker at a time. The `db` volume shows a
second disk replicated by the same processor; `fs` keeps a filesystem whose files can be checked.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from pathlib import Path

from rich.console import Console

from tidemark.producers.traces.synthetic import msr_trace

from . import files, tools
from .environment import DemoEnvironment
from .exceptions import DemoError
from .pipeline import SITE, Pipeline, lag_mean, missing_metrics
from .processes import wait_until
from .report import Report

FS, DB = "fs", "db"
DB_SIZE = 16 << 20


class Scenario:
    def __init__(self, env: DemoEnvironment, pipeline: Pipeline, report: Report, console: Console) -> None:
        self.env, self.pipeline, self.report, self.console = env, pipeline, report, console
        self.work = env.workdir
        self.size = env.options.size_mib << 20
        self.seeded: files.FileSet = {}
        self.changed: files.FileSet = {}
        self.points: dict[str, int] = {}
        self._step = 0

    def step(self, title: str) -> None:
        self._step += 1
        self.console.print(f"[bold cyan]{self._step:2d}.[/] {title}")

    def run(self) -> None:
        self.setup()
        self.seed()
        self.replay_trace()
        self.change_files()
        self.verify()
        self.status_and_metrics()
        self.analytics()
        self.mount_point()
        self.test_failover()
        self.revert()
        self.summarize()

    # -- the steps -----------------------------------------------------------------------------
    def setup(self) -> None:
        self.step(f"topics {self.env.prefix}.*, volumes {FS} ({self.env.options.size_mib} MiB) and {DB}")
        self.env.tidemark("topics", "create")
        self.env.tidemark("volume", "add", FS, "--size", str(self.size))
        self.env.tidemark("volume", "add", DB, "--size", str(DB_SIZE))
        self.step("start the processor and a mirror per volume (site default)")
        self.pipeline.start_processor()
        self.pipeline.start_mirror(FS, self.work / "mirror-fs.img")
        self.pipeline.start_mirror(DB, self.work / "mirror-db.img")
        self.step("start the analytics app (tidemark analytics): windows, alerts, the dashboard")
        self.pipeline.start_analytics()

    def seed(self) -> None:
        self.step("build an ext4 image from generated files (mke2fs -d)")
        self.seeded = files.generate(self.work / "files-seeded", seed=1, count=36, max_bytes=384 << 10)
        tools.make_ext4(self.work / "files-seeded", self.work / "fs-seeded.img", self.size)
        self.source = self.work / "source-fs.img"
        with self.source.open("wb") as image:
            image.truncate(self.size)
        self.tracker_port = self.pipeline.start_tracker(FS, self.source)
        self.step(f"push it through the NBD tracker: qemu-img convert -n ... nbd://127.0.0.1:{self.tracker_port}/{FS}")
        tools.push_image(self.work / "fs-seeded.img", self.tracker_port, FS)
        self._check_same("tracker image = seeded filesystem", self.source, self.work / "fs-seeded.img")
        self._cut_and_wait(FS, "seeded")

    def replay_trace(self) -> None:
        trace, kind = self._trace()
        self.step(f"replay {kind} trace {trace.name} into volume {DB} (its own tracker)")
        db_image = self.work / "source-db.img"
        with db_image.open("wb") as image:
            image.truncate(DB_SIZE)
        out = self.env.tidemark(
            "replay", str(trace), "--format", self.env.options.trace_format, "--volume", DB,
            "--image", str(db_image), "--seed", "7",
        ).stdout  # fmt: skip
        self.report.fact("trace", f"{trace} ({kind}) replayed into {DB}")
        self.console.print(out.rstrip(), highlight=False)
        self.db_image = db_image
        self._cut_and_wait(DB, "trace")

    def change_files(self) -> None:
        self.step("change files with debugfs -w on a copy, write the changed blocks with qemu-io")
        changed_image = self.work / "fs-changed.img"
        shutil.copyfile(self.work / "fs-seeded.img", changed_image)
        added = files.generate(self.work / "files-added", seed=2, count=6, max_bytes=256 << 10, prefix="new/")
        removed, rewritten = sorted(self.seeded)[0], sorted(self.seeded)[1]
        rewrite_source = self.work / "rewritten.bin"
        content = random.Random(3).randbytes(200 << 10)
        rewrite_source.write_bytes(content)
        commands = ["mkdir new", *(f"mkdir new/{d}" for d in sorted({Path(p).parent.name for p in added}))]
        commands += [f"write {self.work / 'files-added' / p} {p}" for p in sorted(added)]
        commands += [f"rm {removed}", f"rm {rewritten}", f"write {rewrite_source} {rewritten}"]
        tools.debugfs_write(changed_image, commands)
        self.changed = {k: v for k, v in self.seeded.items() if k != removed} | added
        self.changed[rewritten] = hashlib.sha256(content).hexdigest()
        extents = files.changed_extents(self.source, changed_image)
        tools.write_extents(changed_image, extents, self.tracker_port, FS, self.work / "extents")
        self.report.fact("file changes", f"{len(added)} added, 1 removed, 1 rewritten: {len(extents)} extents, "
                         f"{sum(n for _, n in extents)} bytes written with qemu-io")  # fmt: skip
        self._check_same("tracker image = changed filesystem", self.source, changed_image)
        self._cut_and_wait(FS, "changed")

    def verify(self) -> None:
        self.step("verify the mirrors block by block against their sources (while they apply)")
        self._verify(f"{FS} mirror = source image", FS, "--source", str(self.source))
        self._verify(f"{DB} mirror = source image", DB, "--source", str(self.db_image))

    def status_and_metrics(self) -> None:
        self.step("tidemark status --json, and a Prometheus scrape of each stage")
        status = json.loads(self.env.tidemark("status", "--json").stdout)
        volumes = {v["volume"]: v for v in status["volumes"]}
        fs = volumes.get(FS, {})
        site = next((s for s in fs.get("sites", []) if s["site"] == SITE), None)
        shows = bool(fs.get("tracker")) and bool(fs.get("last_recovery_point")) and site is not None
        shows = shows and site["rp_id"] is not None and bool(fs.get("throughput"))  # type: ignore[index]
        self.report.check("status shows every stage", shows, f"{FS}: tracker, recovery point, mirror at site {SITE}"
                          if shows else json.dumps(fs)[:300])  # fmt: skip
        for name in (f"tracker-{FS}", "processor", f"mirror-{FS}", f"mirror-{DB}"):
            page = self.pipeline.scrape(name)
            missing = missing_metrics(page)
            shown = f"missing {missing}" if missing else "all named metrics"
            self.report.check(f"metrics of {name}", not missing, shown)
            mean = lag_mean(page)
            if name.startswith("mirror-") and mean is not None:
                self.report.fact(f"  {name[7:]} RPO lag at apply", f"{mean:.2f} s mean age of the data a change set "
                                 "brought to the mirror (tidemark_rpo_lag_seconds)")  # fmt: skip
        self.status = volumes

    def analytics(self) -> None:
        self.step("the analytics dashboard: every volume seen, no encryption alert on ordinary changes")
        url = f"http://127.0.0.1:{self.pipeline.analytics_port}/"
        seen: set[str] = set()

        def both_volumes() -> bool:
            try:
                overview = self.pipeline.dashboard_json("/api/overview")
            except DemoError:
                return False
            seen.update(str(v["volume"]) for v in overview.get("volumes", []))  # type: ignore[attr-defined]
            return {FS, DB} <= seen

        try:
            wait_until(both_volumes, self.env.options.wait_s, "the analytics app to show both volumes", 1.0)
            shown = True
        except DemoError:
            shown = False
        page = self.pipeline.dashboard("/") if shown else ""
        self.report.check("dashboard answers", shown and "tidemark analytics" in page, f"{url} shows {sorted(seen)}")
        alerts = json.loads(self.pipeline.dashboard("/api/alerts")) if shown else []
        raised = [a for a in alerts if a.get("kind") == "ENCRYPTION_SUSPECTED"]
        self.report.check("no encryption alert on ordinary changes", shown and not raised,
                          f"{len(raised)} ENCRYPTION_SUSPECTED alerts on {FS} and {DB}")  # fmt: skip
        self.report.fact("dashboard", url)

    def mount_point(self) -> None:
        point = self.points["seeded"]
        self.step(f"mount recovery point {point} over NBD (tidemark mount), nbdcopy it out, e2fsck -fn")
        port = self.pipeline.serve("mount", "mount", "--volume", FS, "--rp", str(point), "--site", SITE)
        copy = self.work / "mounted.img"
        tools.copy_out(port, FS, copy)
        self.pipeline.stop("mount")
        self._check_filesystem(f"mounted point {point}", copy, self.seeded)

    def test_failover(self) -> None:
        point = self.points["changed"]
        self.step(f"test failover at recovery point {point}: a writable overlay, replication goes on")
        port = self.pipeline.serve(
            "failover", "failover", "--test", "--volume", FS, "--mirror", str(self.work / "mirror-fs.img"),
            "--to", str(point), "--site", SITE,
        )  # fmt: skip
        copy = self.work / "failover.img"
        tools.copy_out(port, FS, copy)
        # the first 1 KiB of ext4 is unused boot space: a write there leaves the filesystem intact
        probe = ["-c", "write -q -P 0x5a 0 512", "-c", "read -q -P 0x5a 0 512"]
        try:
            tools.run(["qemu-io", "-f", "raw", *probe, tools.nbd_uri(port, FS)])
            written = True
        except DemoError:
            written = False
        self.pipeline.stop("failover")
        self.report.check("test failover accepts writes", written, "wrote and read back 512 bytes in the overlay")
        self._check_filesystem(f"failover at point {point}", copy, self.changed)

    def revert(self) -> None:
        point = self.points["seeded"]
        self.step(f"stop the {FS} mirror, revert it to recovery point {point}, check it, let it catch up")
        self.pipeline.stop(f"mirror-{FS}")
        mirror = self.work / "mirror-fs.img"
        latest = self.points["changed"]
        self._verify(f"{FS} mirror = manifests of point {latest}", FS, "--rp", str(latest))
        out = self.env.tidemark("revert", "--volume", FS, "--mirror", str(mirror), "--to", str(point), "--site", SITE)
        self.report.fact("revert", out.stdout.strip())
        self._check_filesystem(f"mirror reverted to point {point}", mirror, self.seeded)
        restarted_ms = int(time.time() * 1000)
        self.pipeline.start_mirror(FS, mirror)
        self.pipeline.wait_held(FS, latest, since_ms=restarted_ms)
        self._verify(f"{FS} mirror caught up after the revert", FS, "--source", str(self.source))

    def summarize(self) -> None:
        """Facts for the report, from `tidemark status` (the topics) after every step."""
        status = json.loads(self.env.tidemark("status", "--json").stdout)
        for volume in status["volumes"]:
            name, throughput = volume["volume"], volume.get("throughput") or {}
            point = volume.get("last_recovery_point") or {}
            sites = ", ".join(f"{s['site']} {s['state']} at point {s['rp_id']}" for s in volume["sites"])
            self.report.fact(
                f"volume {name}",
                f"{volume['size'] >> 20} MiB; {volume['recovery_points']} recovery points (last #{point.get('rp_id')} "
                f"{point.get('label') or point.get('kind')}); mirror {sites or 'none'}",
            )
            self.report.fact(
                f"  {name} bytes written / shipped",
                f"{throughput.get('bytes_written_total', 0)} / {throughput.get('bytes_shipped_total', 0)} "
                "(writes folded into change sets; zeroed ranges count as written)",
            )

    # -- helpers -------------------------------------------------------------------------------
    def _trace(self) -> tuple[Path, str]:
        if self.env.options.trace is not None:
            return self.env.options.trace, "real"
        path = self.work / "synthetic-msr.csv"
        msr_trace(random.Random(11), 400).write(path)
        self.report.fact("note", "no --trace given: replayed a generated MSR-format trace instead of a real one")
        return path, "generated"

    def _cut_and_wait(self, volume: str, label: str) -> None:
        rp = self.pipeline.cut(volume, label)
        self.points[label] = rp
        self.console.print(f"    recovery point {rp} ({label}) cut; waiting for the mirror of {volume} to hold it")
        self.pipeline.wait_held(volume, rp)
        self.report.check(f"mirror of {volume} holds point {rp} ({label})", True, f"MirrorStatus of site {SITE}")

    def _check_same(self, name: str, a: Path, b: Path) -> None:
        same = _same_bytes(a, b)
        self.report.check(name, same, f"{a.name} and {b.name} " + ("are identical" if same else "DIFFER"))

    def _verify(self, name: str, volume: str, *args: str) -> None:
        mirror = self.work / f"mirror-{volume}.img"
        result = self.env.tidemark(
            "verify", "--volume", volume, "--mirror", str(mirror), "--site", SITE, *args, check=False
        )
        output = (result.stdout + result.stderr).strip()
        passed = result.returncode == 0
        detail = output.splitlines()[-1] if passed and output else output[:400] or f"exit {result.returncode}"
        self.report.check(name, passed, detail)

    def _check_filesystem(self, what: str, image: Path, expected: files.FileSet) -> None:
        try:
            tools.fsck(image)
            clean, detail = True, "clean"
        except DemoError as exc:
            clean, detail = False, str(exc).splitlines()[-1]
        self.report.check(f"e2fsck -fn: {what}", clean, detail)
        tree = self.work / f"dump-{image.stem}-{self._step}"
        tools.dump_tree(image, tree)
        comparison = files.compare(expected, files.checksums(tree))
        self.report.check(f"files of {what}", comparison.identical, comparison.describe(len(expected)))
        shutil.rmtree(tree, ignore_errors=True)


def _same_bytes(a: Path, b: Path, chunk: int = 1 << 20) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(chunk), fb.read(chunk)
            if x != y:
                return False
            if not x:
                return True
