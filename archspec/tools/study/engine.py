"""`archspec study`: train every member of one or more populations as Ray tasks, one record per finished member.

By default an embedded Ray is started here with `workers x threads` CPUs and shut down on the way out,
whatever the way out (success, a failure, Ctrl-C, SIGTERM); with `address` the members run on an existing
cluster, which is left as it was. Ray is imported by this module's functions alone: the rest of archspec
never imports it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.tools.progress import Progress
from archspec.tools.study.members import Population
from archspec.tools.study.records import (
    CSV_FILE,
    LOCK_FILE,
    MEMBERS_FOLDER,
    RESULTS_FILE,
    MemberRecord,
    append_record,
    prepare_folder,
    read_records,
    study_record,
    write_csv,
)
from archspec.tools.study.worker import MemberTask, train_member
from archspec.tools.train.recipe import Recipe

# A member whose worker process dies (killed, crashed) is tried this many more times before it is failed.
RETRIES = 2
# How long a cluster address may take to accept a connection before it is refused (seconds).
CONNECT_TIMEOUT = 10.0


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def plan_members(populations: Sequence[Population], data: str) -> list[tuple[str, str, str, int, int]]:
    """(population, name, spec, params, flops) of every member, each spec planned for the data's shape first:
    a spec that cannot be trained on this data is reported, located, before anything starts.

    The populations take turns (the first member of each, then the second, ...), so that a study stopped
    half-way has records from every population, not only from the first."""
    from archspec.counting.analytic import complexity
    from archspec.tools.train.data import parse_data, plan_for_data

    source = parse_data(data)
    planned = []
    longest = max((len(population.members) for population in populations), default=0)
    turns = [p.members[i] for i in range(longest) for p in populations if i < len(p.members)]
    for member in turns:
        plan = plan_for_data(member.spec, source)
        if plan.taps is not None:
            raise SpecError(
                Problem(Mark(member.spec), "head.features", "returns feature maps; a study needs a classifier head")
            )
        c = complexity(plan)
        planned.append((member.population, member.name, member.spec, c.params, c.flops))
    return planned


def run_study(
    populations: Sequence[Population],
    out: Path,
    *,
    data: str = "digits",
    recipe: Recipe | None = None,
    workers: int | None = None,
    threads: int = 1,
    address: str | None = None,
    gpus_per_member: float = 0.0,
    resume: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> list[MemberRecord]:
    """Train every member without a record in `out/results.jsonl`; return all the study's records."""
    from archspec.tools.train.data import parse_data
    from archspec.tools.train.run_folder import RunLock

    recipe = recipe or Recipe(epochs=10)
    progress = progress or Progress(prefix="archspec")
    workers = workers or default_workers()
    source = parse_data(data)
    planned = plan_members(populations, data)
    check_cluster(address)
    out = Path(out)
    if not out.exists() and out.parent.is_dir():
        out.mkdir()
    lock = RunLock(out) if out.is_dir() else None
    if lock is not None:
        lock.path = out / LOCK_FILE
        try:
            lock.acquire(progress.note)
        except SpecError as exc:  # the run folder's lock speaks of archspec train
            raise SpecError(
                [
                    Problem(p.mark, p.path, p.message.replace("archspec train", "archspec study"), p.via)
                    for p in exc.problems
                ]
            ) from None
    try:
        prepare_folder(out, study_record(source.text, recipe, threads), resume=resume, force=force)
        results = out / RESULTS_FILE
        records = read_records(results, repair=True) if resume else []
        done = {(r.population, r.name) for r in records}
        device = "cuda" if gpus_per_member > 0 else "cpu"
        tasks = [
            MemberTask(
                population,
                name,
                spec,
                str((out / MEMBERS_FOLDER / population / name).resolve()),
                source.text,
                recipe,
                threads,
                device,
                params,
                flops,
                resume,
            )
            for population, name, spec, params, flops in planned
            if (population, name) not in done
        ]
        if done:
            progress.note(f"study: {len(done)} members have a record; training the other {len(tasks)}")

        def finished(record: MemberRecord) -> None:
            append_record(results, record)
            records.append(record)
            write_csv(out / CSV_FILE, records)

        if tasks:
            _run_on_ray(tasks, finished, workers, threads, address, gpus_per_member, progress)
        write_csv(out / CSV_FILE, records)
        return records
    finally:
        if lock is not None:
            lock.release()


def _address_source(address: str | None) -> tuple[str | None, str]:
    """The cluster's address (`address`, else RAY_ADDRESS, else None: an embedded Ray) and how messages name it."""
    if address:
        return address, f"--address {shorten(address)}"
    found = os.environ.get("RAY_ADDRESS") or None
    return found, f"RAY_ADDRESS={shorten(found or '')}"


def check_cluster(address: str | None) -> None:
    """Refuse, in one line naming the option, a `HOST:PORT` cluster address where nothing accepts a connection.

    Ray itself retries such an address for many minutes, printing a warning every few seconds; a TCP connection
    tried here answers within `CONNECT_TIMEOUT` seconds, before anything is written. Other forms (`auto`, `local`,
    a name without a port) are left to Ray.
    """
    address, option = _address_source(address)
    if address is None:
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            return
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
    raise SpecError(
        Problem(
            Mark(option),
            "address",
            f"no Ray cluster answers at {shorten(address)} ({reason}); check that the cluster is running "
            "(`ray status` on its head node) and that this is its head's address and GCS port (6379 unless "
            "`ray start --port` chose another); a cluster with token authentication also needs RAY_AUTH_MODE=token "
            "and its token in this environment",
        )
    )


def _run_on_ray(
    tasks: list[MemberTask],
    finished: Callable[[MemberRecord], None],
    workers: int,
    threads: int,
    address: str | None,
    gpus: float,
    progress: Progress,
) -> None:
    import ray

    address, option = _address_source(address)
    where = f"the Ray cluster at {address}" if address else f"an embedded Ray with {workers} workers"
    progress.note(f"study: {len(tasks)} members on {where}, {threads} torch thread(s) each")
    # ray.init installs its own SIGTERM handler (it exits at once); keep archspec's, which unwinds through
    # the `finally` below so that the embedded cluster is shut down.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
    }
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(address="local", num_cpus=workers * threads, num_gpus=None if gpus > 0 else 0, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        ray.shutdown()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if address:
            raise SpecError(
                Problem(
                    Mark(option),
                    "address",
                    f"{shorten(first)}; a cluster with token authentication needs RAY_AUTH_MODE=token and its token "
                    "in this environment",
                )
            ) from None
        raise SpecError(Problem(Mark("--workers"), "ray", shorten(first))) from None
    finally:
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)
    pending: dict[Any, MemberTask] = {}
    try:
        remote = ray.remote(train_member).options(num_cpus=threads, num_gpus=gpus, max_retries=RETRIES)
        pending = {remote.remote(task): task for task in tasks}
        started = time.monotonic()
        done = failed = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    record: MemberRecord = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    record = replace(train_member_failure(task), reason=_ray_reason(exc))
                finished(record)
                done += 1
                failed += record.status != "ok"
                elapsed = time.monotonic() - started
                left = elapsed / done * len(pending)
                progress.note(
                    f"study: {done}/{len(tasks)} finished ({failed} failed), {min(len(pending), workers)} running, "
                    f"about {_duration(left)} left; {record.population}/{record.name}: "
                    + (f"error {record.error:.4f}" if record.error is not None else f"failed: {record.reason}")
                )
    finally:
        if address:
            for ref in pending:
                ray.cancel(ref, force=True)  # on a shared cluster, stop what this study started
        ray.shutdown()


def train_member_failure(task: MemberTask) -> MemberRecord:
    return MemberRecord(
        task.population, task.name, task.spec, "failed", None, None, task.params, task.flops, task.recipe.epochs, 0.0
    )


def _ray_reason(exc: BaseException) -> str:
    import ray

    if isinstance(exc, ray.exceptions.OutOfMemoryError):
        return "out of memory (Ray stopped the worker)"
    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        return f"the worker died ({RETRIES + 1} tries)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return shorten(f"{type(exc).__name__}: {first}", 200)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
