"""``python -m benchmarks`` (``make bench``): run every benchmark once and write the report.

Options: ``--only NAME`` (repeatable) runs some scenarios; ``--quick`` runs smaller loads (for
trying the harness; the report says so). Scenarios: inflight, polling, throughput, scaling, memory, limits,
formats. ``--before FILE`` puts an
earlier run's figures (its JSON report) beside this run's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.driver import (
    BFL_KEY,
    BenchBfl,
    CommandResult,
    FakePlatform,
    attach_provider_times,
    bot_process,
    free_port,
    make_image,
    percentile,
    run_baseline,
    send_commands,
)

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
IMAGE_1_5MB = 1_500_000
# FLUX.2 [pro]'s usual generation time (the catalog's typical_seconds for "pro").
PRO_SECONDS = 8.0


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def summarize(results: list[CommandResult]) -> dict[str, Any]:
    acks = [r.ack_ms / 1000 for r in results]
    added = [r.added for r in results if r.added is not None]
    e2e = [r.end_to_end for r in results if r.end_to_end is not None]
    gens = [r.generation for r in results if r.generation is not None and r.added is not None]
    failed = [r.ref for r in results if r.arrival is None or r.arrival.kind != "deliver"]
    return {
        "jobs": len(results),
        "not_delivered": len(failed),
        "ack_p50_ms": ms(percentile(acks, 50)),
        "ack_p99_ms": ms(percentile(acks, 99)),
        "added_p50_ms": ms(percentile(added, 50)),
        "added_p99_ms": ms(percentile(added, 99)),
        "e2e_over_provider": round(sum(e2e) / sum(gens), 4) if gens else None,
        "polls_per_job": round(statistics.mean(r.polls for r in results), 2) if results else None,
    }


def summarize_baseline(results: list[Any]) -> dict[str, Any]:
    acks = [r.acked - r.sent for r in results]
    added = [r.added for r in results]
    e2e = [r.done - r.sent for r in results]
    gens = [r.generation for r in results]
    return {
        "jobs": len(results),
        "ack_p50_ms": ms(percentile(acks, 50)),
        "ack_p99_ms": ms(percentile(acks, 99)),
        "added_p50_ms": ms(percentile(added, 50)),
        "added_p99_ms": ms(percentile(added, 99)),
        "e2e_over_provider": round(sum(e2e) / sum(gens), 4) if gens else None,
        "polls_per_job": round(statistics.mean(r.polls for r in results), 2),
    }


class Bench:
    def __init__(self, quick: bool, workdir: Path) -> None:
        self.quick = quick
        self.workdir = workdir
        self._runs = 0

    def bot_env(
        self,
        fake: BenchBfl,
        platform: FakePlatform,
        *,
        database: str | None = None,
        webhooks: bool = False,
        typical_seconds: float | None = None,
        concurrency: int = 1000,
        port: int | None = None,
    ) -> dict[str, str]:
        self._runs += 1
        data = self.workdir / f"run{self._runs}"
        port = port or free_port()
        env = {
            "IMAGINE_DATA_DIR": str(data),
            "IMAGINE_DATABASE_URL": database or f"sqlite:///{data / 'imagine.db'}",
            "IMAGINE_PROVIDERS": "bfl",
            "BFL_API_KEY": BFL_KEY,
            "BFL_API_BASE": fake.origin,
            "IMAGINE_HTTP_HOST": "127.0.0.1",
            "IMAGINE_HTTP_PORT": str(port),
            "IMAGINE_LOG_LEVEL": "WARNING",
            "BENCH_PLATFORM_URL": platform.url,
            "BENCH_CONCURRENCY": str(concurrency),
            **(
                {"BENCH_PROFILE": os.environ["BENCH_PROFILE"]}
                if "BENCH_PROFILE" in os.environ
                else {}
            ),
        }
        if webhooks:
            env["IMAGINE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        if typical_seconds is not None:
            env["BENCH_TYPICAL_SECONDS"] = str(typical_seconds)
        return env

    # Scenarios ---------------------------------------------------------------------------------

    async def inflight(self) -> dict[str, Any]:
        """Ack latency and added latency at 1, 100 and 500 in flight, 1.5 MB images, polling."""
        levels = [1, 20, 50] if self.quick else [1, 100, 500]
        image = make_image(1024, 1024, IMAGE_1_5MB)
        out: dict[str, Any] = {"image_bytes": len(image), "generation_s": PRO_SECONDS, "levels": {}}
        for n in levels:
            fake, platform = BenchBfl(image), FakePlatform()
            await fake.start()
            await platform.start()
            try:
                async with bot_process(self.bot_env(fake, platform)) as bot:
                    refs = [f"i{n}-{i}" for i in range(n)]
                    results = await send_commands(
                        bot.url,
                        platform,
                        refs,
                        lambda ref: f"a lighthouse ref={ref} gen={PRO_SECONDS}",
                    )
                    attach_provider_times(results, fake)
                    ours = summarize(results)
                    ours["peak_rss_mb"] = round(bot.peak_rss_mb(), 1)
                async with bot_process({}, module="benchmarks.floor") as floor:
                    floor_acks = await send_commands(
                        floor.url, platform, [f"f{n}-{i}" for i in range(n)], str, wait=False
                    )
                acks = [r.ack_ms / 1000 for r in floor_acks]
                floor_summary = {
                    "ack_p50_ms": ms(percentile(acks, 50)),
                    "ack_p99_ms": ms(percentile(acks, 99)),
                }
                base_refs = [f"b{n}-{i}" for i in range(n)]
                baseline = summarize_baseline(
                    await run_baseline(
                        fake, platform, base_refs, lambda ref: f"ref={ref} gen={PRO_SECONDS}"
                    )
                )
            finally:
                await fake.aclose()
                await platform.aclose()
            out["levels"][str(n)] = {"bot": ours, "baseline": baseline, "floor": floor_summary}
            print(
                f"  inflight {n}: bot {ours}\n               baseline {baseline}"
                f"\n               floor {floor_summary}",
                flush=True,
            )
        return out

    async def polling(self) -> dict[str, Any]:
        """Generation times between 1 and 20 s: polls per job and added latency, polling and
        webhooks, against the seed's fixed 1 s loop, on the same fake."""
        n = 20 if self.quick else 30
        rng = random.Random(20261125)
        gens = {f"{i}": round(rng.uniform(1.0, 20.0), 2) for i in range(n)}
        image = make_image(1024, 1024, IMAGE_1_5MB)
        fake, platform = BenchBfl(image), FakePlatform()
        await fake.start()
        await platform.start()
        try:

            def prompt(prefix: str) -> Callable[[str], str]:
                return lambda ref: f"a fox ref={ref} gen={gens[ref.split('-')[1]]}"

            # One after the other, so that each has the machine to itself.
            async with bot_process(self.bot_env(fake, platform)) as polled:
                polled_results = await send_commands(
                    polled.url, platform, [f"p-{i}" for i in gens], prompt("p")
                )
            async with bot_process(self.bot_env(fake, platform, webhooks=True)) as hooked:
                hooked_results = await send_commands(
                    hooked.url, platform, [f"w-{i}" for i in gens], prompt("w")
                )
            base_results = await run_baseline(fake, platform, [f"b-{i}" for i in gens], prompt("b"))
        finally:
            await fake.aclose()
            await platform.aclose()
        attach_provider_times(polled_results, fake)
        attach_provider_times(hooked_results, fake)
        out = {
            "jobs": n,
            "generation_s": [min(gens.values()), max(gens.values())],
            "bot_polling": summarize(polled_results),
            "bot_webhooks": summarize(hooked_results),
            "baseline": summarize_baseline(base_results),
        }
        for key in ("bot_polling", "bot_webhooks"):
            out[key]["added_mean_ms"] = ms(
                statistics.mean(
                    r.added
                    for r in (polled_results if key == "bot_polling" else hooked_results)
                    if r.added is not None
                )
            )
        out["baseline"]["added_mean_ms"] = ms(statistics.mean(r.added for r in base_results))
        print(f"  polling: {out}", flush=True)
        return out

    async def throughput(self) -> dict[str, Any]:
        """Jobs per second with an instant provider (tiny image, result ready at submit)."""
        n = 300 if self.quick else 500
        image = make_image(64, 64)
        out: dict[str, Any] = {"jobs": n}
        runs: list[tuple[str, str | None, int]] = [("sqlite", None, 1)]
        pg = await postgres_database()
        if pg is None:
            out["postgresql"] = "not measured: no PostgreSQL at 127.0.0.1:5432 or no postgres store"
        else:
            runs += [("postgresql_1_process", "pg1", 1), ("postgresql_2_processes", "pg2", 2)]
        for name, db, processes in runs:
            database = None
            if db is not None:
                database = await postgres_database(fresh=f"bench_{db}_{int(time.time())}")
            out[name] = await self._jobs_per_second(
                image, n, processes, database, slots=256, generation=0.0, ref=f"t{name}"
            )
            print(f"  throughput {name}: {out[name]}", flush=True)
        return out

    async def _jobs_per_second(
        self,
        image: bytes,
        n: int,
        processes: int,
        database: str | None,
        *,
        slots: int,
        generation: float,
        ref: str,
    ) -> dict[str, Any]:
        """Send ``n`` commands at once to one bot process (plus a second, worker-only one when
        ``processes`` is 2) and measure deliveries per second until the last one arrives."""
        fake, platform = BenchBfl(image), FakePlatform()
        await fake.start()
        await platform.start()
        try:
            env = self.bot_env(
                fake, platform, database=database, typical_seconds=generation, concurrency=slots
            )
            async with bot_process(env) as bot:
                extra = []
                if processes == 2:
                    second = dict(env, IMAGINE_HTTP_PORT=str(free_port()))
                    extra.append(bot_process(second, "--no-adapter"))
                async with _all(extra):
                    started = time.monotonic()
                    results = await send_commands(
                        bot.url,
                        platform,
                        [f"{ref}-{i}" for i in range(n)],
                        lambda r: f"a cube ref={r} gen={generation:g}",
                        community=lambda r: f"c{int(r.rsplit('-', 1)[1]) % 20}",
                    )
                    last = max(r.arrival.at for r in results if r.arrival is not None)
                    delivered = sum(1 for r in results if r.arrival and r.arrival.kind == "deliver")
        finally:
            await fake.aclose()
            await platform.aclose()
        return {
            "delivered": delivered,
            "seconds": round(last - started, 2),
            "jobs_per_s": round(delivered / (last - started), 2),
        }

    async def scaling(self) -> dict[str, Any]:
        """PostgreSQL, provider-bound: jobs/s with one worker process and with two, each with the
        same fixed number of job slots, every generation taking 1 s at the provider."""
        n = 80 if self.quick else 160
        slots = 8
        out: dict[str, Any] = {"jobs": n, "slots_per_process": slots, "generation_s": 1.0}
        if await postgres_database() is None:
            return {"error": "not measured: no PostgreSQL at 127.0.0.1:5432 or no postgres store"}
        image = make_image(256, 256)
        for name, processes in (("postgresql_1_process", 1), ("postgresql_2_processes", 2)):
            database = await postgres_database(fresh=f"bench_scale{processes}_{int(time.time())}")
            out[name] = await self._jobs_per_second(
                image, n, processes, database, slots=slots, generation=1.0, ref=f"s{processes}"
            )
            print(f"  scaling {name}: {out[name]}", flush=True)
        return out

    async def memory(self) -> dict[str, Any]:
        """Peak RSS of the bot with 10,000 queued jobs, and with 50 concurrent 4-megapixel images."""
        queued = 2000 if self.quick else 10_000
        out: dict[str, Any] = {}
        fake, platform = BenchBfl(make_image(64, 64)), FakePlatform()
        await fake.start()
        await platform.start()
        try:
            # Generation takes 10 minutes: the workers hold 32 jobs, the rest stays queued.
            async with bot_process(self.bot_env(fake, platform, concurrency=32)) as bot:
                idle = bot.rss_mb()
                started = time.monotonic()
                for batch in range(0, queued, 500):
                    await send_commands(
                        bot.url,
                        platform,
                        # Refs with no separator: each stays one word of the prompt.
                        [f"q{i}" for i in range(batch, min(queued, batch + 500))],
                        lambda ref: f"a queue ref={ref} gen=600",
                        community=lambda ref: f"c{int(ref[1:]) % 50}",
                        wait=False,
                    )

                def refused_count() -> int:
                    return sum(1 for a in platform.arrivals.values() if a.kind == "refused")

                waiting, running = await wait_for_queue(
                    bot.url, lambda: queued - refused_count(), timeout=300
                )
                refused = refused_count()
                out["queued_jobs"] = {
                    "sent": queued,
                    "refused": refused,
                    "stored_queued": waiting,
                    "running": running,
                    "enqueue_seconds": round(time.monotonic() - started, 1),
                    "idle_rss_mb": round(idle, 1),
                    "peak_rss_mb": round(bot.peak_rss_mb(), 1),
                }
        finally:
            await fake.aclose()
            await platform.aclose()
        print(f"  memory queued: {out['queued_jobs']}", flush=True)
        image = make_image(2048, 2048)
        fake, platform = BenchBfl(image), FakePlatform()
        await fake.start()
        await platform.start()
        try:
            async with bot_process(self.bot_env(fake, platform, typical_seconds=2.0)) as bot:
                results = await send_commands(
                    bot.url,
                    platform,
                    [f"m-{i}" for i in range(50)],
                    lambda ref: f"a mountain ref={ref} gen=2",
                    size=(2048, 2048),
                )
                out["images_4mp"] = {
                    "jobs": 50,
                    "image_bytes": len(image),
                    "delivered": sum(
                        1 for r in results if r.arrival and r.arrival.kind == "deliver"
                    ),
                    "peak_rss_mb": round(bot.peak_rss_mb(), 1),
                }
        finally:
            await fake.aclose()
            await platform.aclose()
        print(f"  memory 4MP: {out['images_4mp']}", flush=True)
        return out

    async def limits(self) -> dict[str, Any]:
        """Rate-limit decisions per second: admissions through the store's atomic ``admit_job``."""
        from benchmarks.limits import decisions_per_second

        n = 500 if self.quick else 3000
        out: dict[str, Any] = {}
        out["sqlite"] = await decisions_per_second(f"sqlite:///{self.workdir / 'limits.db'}", n)
        database = await postgres_database(fresh=f"bench_limits_{int(time.time())}")
        if database is None:
            out["postgresql"] = "not measured: no PostgreSQL store or server"
        else:
            out["postgresql"] = await decisions_per_second(database, n)
        print(f"  limits: {out}", flush=True)
        return out

    async def formats(self) -> dict[str, Any]:
        """Bytes per delivered 1-megapixel image in each output format (JPEG is the default)."""
        from benchmarks.formats import bytes_per_image

        out = await bytes_per_image()
        print(f"  formats: {out}", flush=True)
        return out


class _all:
    """Enter several async context managers (a variable number)."""

    def __init__(self, managers: list[Any]) -> None:
        self._managers = managers
        self._entered: list[Any] = []

    async def __aenter__(self) -> list[Any]:
        for manager in self._managers:
            self._entered.append(await manager.__aenter__())
        return self._entered

    async def __aexit__(self, *exc: object) -> None:
        for manager in reversed(self._managers):
            await manager.__aexit__(None, None, None)


async def wait_for_queue(
    bot_url: str, at_least: Callable[[], int], timeout: float
) -> tuple[int, int]:
    """Wait until the bot holds ``at_least()`` jobs, queued plus running; (queued, running)."""
    import httpx

    deadline = time.monotonic() + timeout
    queued = running = 0
    async with httpx.AsyncClient(base_url=bot_url, timeout=60.0) as client:
        while time.monotonic() < deadline:
            try:
                text = (await client.get("/metrics")).text
            except httpx.HTTPError:
                continue
            for line in text.splitlines():
                if line.startswith("imagine_queue_depth "):
                    queued = int(float(line.split()[1]))
                elif line.startswith("imagine_jobs_running "):
                    running = int(float(line.split()[1]))
            if queued + running >= at_least():
                break
            await asyncio.sleep(0.5)
    return queued, running


async def postgres_database(fresh: str | None = None) -> str | None:
    """A URL of a fresh database on the local server, or None without the server or store."""
    try:
        import asyncpg  # type: ignore[import-untyped,unused-ignore]

        from bot.store import postgres  # noqa: F401
    except ImportError:
        return None
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        if fresh is None:
            return PG_ADMIN_URL
        await conn.execute(f'DROP DATABASE IF EXISTS "{fresh}"')
        await conn.execute(f'CREATE DATABASE "{fresh}"')
    finally:
        await conn.close()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{fresh}"


SCENARIOS: dict[str, Callable[[Bench], Awaitable[dict[str, Any]]]] = {
    "inflight": Bench.inflight,
    "polling": Bench.polling,
    "throughput": Bench.throughput,
    "scaling": Bench.scaling,
    "memory": Bench.memory,
    "limits": Bench.limits,
    "formats": Bench.formats,
}


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--before", type=Path, help="an earlier run's JSON report, shown beside")
    args = parser.parse_args(argv)
    before = json.loads(args.before.read_text(encoding="utf-8")) if args.before else None
    workdir = Path(tempfile.mkdtemp(prefix="imagine-bench-"))
    bench = Bench(args.quick, workdir)
    results: dict[str, Any] = {}
    started = time.monotonic()
    try:
        for name in args.only or list(SCENARIOS):
            print(f"{name} ...", flush=True)
            t = time.monotonic()
            try:
                results[name] = await SCENARIOS[name](bench)
            except Exception as exc:  # a broken scenario is reported, the others still run
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"  {name} failed: {exc!r}", flush=True)
            results[name]["wall_seconds"] = round(time.monotonic() - t, 1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    paths = report.write(
        results, quick=args.quick, seconds=time.monotonic() - started, before=before
    )
    print(f"report: {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
