"""The FastAPI app factory. Artifacts load in ``lifespan``; nothing touches the database at
import time. One router per resource; the web page is served from ``/``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from avrec.service.rwlock import ReadWriteLock
from avrec.service.settings import ServiceSettings, service_secret
from avrec.service.training import TrainingJobs
from avrec.settings import avrec_home

UI = Path(__file__).parent / "ui"


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "avrec_requests_total", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "avrec_request_seconds",
            "request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5),
        )
        self.events = Counter(
            "avrec_events_total", "feedback events stored", registry=self.registry
        )
        self.event_to_state = Histogram(
            "avrec_event_to_state_seconds",
            "event received -> committed -> user state updated",
            registry=self.registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
        )
        from avrec.service.timing import Latencies

        self.samples = Latencies()


class MetricsMiddleware:
    """Counts and times every request by route template (plain ASGI: cheaper than
    ``BaseHTTPMiddleware`` on the hot path)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def record_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            elapsed = time.perf_counter() - start
            name = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(elapsed)
            if status < 400:
                self.metrics.samples.add(f"{scope['method']} {name}", elapsed)


def start_retention(app: FastAPI, settings: ServiceSettings) -> asyncio.Task | None:
    """When retention is configured, a background task that deletes expired events at start
    and then every ``retention_interval_s`` seconds (in the thread pool: the event loop never
    waits on the database). A failed run is logged and tried again at the next interval."""
    days, every = settings.retention_days, settings.retention_interval_s
    if days is None or every <= 0:
        return None
    log = logging.getLogger("avrec.service")

    async def run() -> None:
        from fastapi.concurrency import run_in_threadpool

        while True:
            try:
                removed = await run_in_threadpool(app.state.avrec.expire_events, days)
                app.state.retention_runs = getattr(app.state, "retention_runs", 0) + 1
                if any(removed.values()):
                    log.info("retention (%s days): deleted %s", days, removed)
            except Exception:  # the database away, say: the next run tries again
                log.exception("retention run failed")
            await asyncio.sleep(every)

    app.state.retention_task = asyncio.create_task(run(), name="avrec-retention")
    return app.state.retention_task


async def stop_retention(task: asyncio.Task | None) -> None:
    """Cancel the retention task and wait until it has stopped (a run in progress is waited
    for: its thread finishes the transaction before the engine goes away)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(settings: ServiceSettings) -> FastAPI:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from threadpoolctl import threadpool_limits

        from avrec.models.base import Recommender
        from avrec.service.state import ServiceState
        from avrec.storage.db import get_engine

        threadpool_limits(1)
        try:
            import faiss

            faiss.omp_set_num_threads(1)
        except ImportError:  # pragma: no cover - faiss is a core dependency
            pass
        model = Recommender.load(settings.model_dir)
        app.state.avrec = ServiceState(
            model, get_engine(settings.database_url), settings.media_root, settings
        )
        from avrec.service.follow import prewarm

        # what a first answer builds (the cascade, the model's state for scoring a few items,
        # the explanations' per-item lists: seconds at a million items) is built before any
        # request, not by the first requests at once
        app.state.avrec.items.warm()
        prewarm(app.state.avrec)
        if settings.rules_file is not None:  # a bad file stops the start, saying why
            app.state.rules.load_file(app.state.avrec.items.frame)
        if settings.ads_file is not None:  # likewise a bad ads.csv
            from avrec.service.ads import AdBook

            app.state.ads = AdBook(
                settings.ads_file,
                settings.ads_engagement,
                settings.ads_seed,
                pacing=settings.ads_pacing,
            )
        app.state.secret = service_secret(settings)
        app.state.limiter.secret = app.state.secret  # checks visitor cookies itself
        app.state.limiter.trust_keys(app.state.avrec.engine)
        import gc

        gc.collect()
        gc.freeze()  # the loaded catalog and model are permanent: later collections skip them
        retention = start_retention(app, settings)
        app.state.training = TrainingJobs(
            app.state.avrec.engine.url.render_as_string(hide_password=False),
            settings.models_root or avrec_home() / "models",
        )
        follower = None
        if settings.follow_registry:
            from avrec.service.follow import Follower, check

            await run_in_threadpool(check, app)  # a version promoted while it was down
            follower = Follower(app, settings)
        try:
            yield
        finally:
            if follower is not None:
                follower.stop()
            await stop_retention(retention)
            app.state.training.close()
            gc.unfreeze()
            app.state.avrec.close()

    app = FastAPI(
        title="avrec",
        version="0.1.0",
        lifespan=lifespan,
        description="Recommendations that understand audio and video content.",
    )
    app.state.settings = settings
    #: event writes and deletions share it; a model swap takes it alone (service/follow.py)
    app.state.swap_lock = ReadWriteLock()
    app.state.metrics = Metrics()
    from avrec.service.rules import RuleBook

    #: the business rules in force (service/rules.py): swapped by the admin API or the file
    app.state.rules = RuleBook(settings.rules_file)
    app.state.ads = None  # the ad catalog (service/ads.py), loaded in lifespan when configured

    @app.get("/health", tags=["ops"])
    def health(request: Request) -> dict:
        state = request.app.state.avrec
        return {
            "status": "ok",
            "model": state.model.name,
            "version": state.model_version,
            "items": len(state.items),
            "index": state.items.index.kind if state.items.index is not None else None,
            "retrieval": "index"
            if state.use_index
            else "cascade"
            if state.cascade is not None
            else "model",
        }

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    from avrec.service.routes_admin import router as admin_router
    from avrec.service.routes_ads import router as ads_router
    from avrec.service.routes_control import router as control_router
    from avrec.service.routes_items import media_router
    from avrec.service.routes_items import router as items_router
    from avrec.service.routes_models import router as models_router
    from avrec.service.routes_users import router as users_router

    app.include_router(items_router)
    app.include_router(users_router)
    app.include_router(control_router)
    app.include_router(media_router)
    app.include_router(admin_router)
    app.include_router(models_router)
    app.include_router(ads_router)
    app.mount("/", StaticFiles(directory=UI, html=True), name="ui")
    from avrec.service import faults
    from avrec.service.headers import SecurityHeaders
    from avrec.service.limits import BodyLimit
    from avrec.service.throttle import InFlightLimit, RateLimit, RateLimiter
    from avrec.service.validation import install

    install(app)  # request guard (inside BodyLimit), error handlers, documented error answers
    faults.register(app)  # database down: 503 + Retry-After; disk full: 507
    app.state.limiter = RateLimiter(
        settings.rate_per_s,
        settings.rate_burst,
        settings.visitor_rate_per_s,
        settings.visitor_burst,
    )
    app.add_middleware(BodyLimit, limit=settings.max_body)
    app.add_middleware(InFlightLimit, limit=settings.max_in_flight)
    app.add_middleware(RateLimit, limiter=app.state.limiter)  # a 429 takes no in-flight slot
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # counts 413/429/503 too
    # the security headers wrap the whole stack, Starlette's own 500 answer included (its
    # ServerErrorMiddleware sits outside every middleware added with add_middleware)
    build = app.build_middleware_stack

    def secured() -> SecurityHeaders:
        return SecurityHeaders(build())

    app.build_middleware_stack = secured  # type: ignore[method-assign]  # Starlette has no hook
    return app
