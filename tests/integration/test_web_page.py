"""The web page in a real headless browser (Debian Chromium driven by Playwright): the catalog
with posters and what the encoders understood of each item, a visitor picks favourites, gets
recommendations with explanations, likes/skips to run the next round, opens "why this?", sees
the profile (portrait), types a request in Chinese, reloads and is the same visitor (the token in
an HttpOnly cookie, nothing in localStorage), all under the page's strict CSP; a screenshot is
kept under test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.service_fixtures import build, launch_chromium, serving

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from avrec.service.app import create_app
    from avrec.service.settings import ServiceSettings

    model_dir, url, _ = build(tmp_path_factory.mktemp("web"), media=True)
    app = create_app(ServiceSettings(model_dir=model_dir, database_url=url, secret="web"))
    with serving(app) as base:
        yield base


@pytest.mark.browser
def test_visitor_rounds_in_a_real_browser(server):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed here (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "console",
            lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(server)
        page.wait_for_selector(".card")
        # posters load (real PNGs served by /media) and each card shows the understanding
        page.wait_for_function(
            "() => document.querySelector('.card[data-item=\"m0\"] img')?.naturalWidth > 0"
        )
        assert "🔊" in page.inner_text('.card[data-item="m0"] .und')
        assert "🎞" in page.inner_text('.card[data-item="f1"] .und')
        assert "mood:" in page.inner_text('.card[data-item="f1"] .und')
        for item in ("f1", "f3"):  # two action films as favourites
            page.click(f'.card[data-item="{item}"] button.fav')
        page.wait_for_selector("#recs li")
        page.wait_for_function(
            "() => document.querySelector('#round').textContent.includes('round 2')"
        )
        first = page.eval_on_selector_all("#recs li .muted", "els => els.map(e => e.textContent)")
        assert sum("Action" in g for g in first[:5]) >= 4
        assert "because you liked" in page.inner_text("#recs li .expl")
        # the variety slider: DPP re-ranking brings other kinds in; back to 0, the model's order
        slide = "(e, v) => { e.value = v; e.dispatchEvent(new Event('change')); }"
        page.eval_on_selector("#diversity", slide, "1")
        page.wait_for_function(
            "() => document.querySelector('#round').textContent.includes('round 3')"
        )
        varied = page.eval_on_selector_all("#recs li .muted", "els => els.map(e => e.textContent)")
        assert sum("Music" in g for g in varied[:5]) >= 1, varied
        page.eval_on_selector("#diversity", slide, "0")
        page.wait_for_function(
            "() => document.querySelector('#round').textContent.includes('round 4')"
        )
        again = page.eval_on_selector_all("#recs li .muted", "els => els.map(e => e.textContent)")
        assert again == first
        # next rounds: like calm music, skip the top film
        for item in ("m0", "m2", "m4"):
            page.click(f'.card[data-item="{item}"] button.fav')
        page.click("#recs li button.skip")
        page.wait_for_function(
            "() => document.querySelector('#round').textContent.includes('round 8')"
        )
        later = page.eval_on_selector_all("#recs li .muted", "els => els.map(e => e.textContent)")
        assert sum("Music" in g for g in later[:5]) >= 3, later
        page.click("#recs li button.why")
        page.wait_for_selector("#why:not([hidden])")
        assert "people interacted" in page.inner_text("#why-body")
        assert page.locator('#why-body li[data-modality="image"]').count() == 1
        assert "Music" in page.inner_text("#profile")
        facets = page.eval_on_selector_all(
            "#profile .facet", "els => els.map(e => e.dataset.facet)"
        )
        assert {"genres", "kinds", "moods", "sound", "visual"} <= set(facets), facets
        # a typed request, in Chinese
        page.fill("#query", "安静的音乐")
        page.click("#ask button")
        page.wait_for_function(
            "() => document.querySelector('#round').textContent.includes('round 9')"
        )
        assert "request" in page.inner_text("#recs li .expl")
        page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
        # the token stays out of the page's reach (HttpOnly cookie), and a reload keeps the visitor
        visitor = page.inner_text("#visitor")
        assert page.evaluate("localStorage.length") == 0 and "avrec_visitor" not in page.evaluate(
            "document.cookie"
        )
        page.reload()
        page.wait_for_function(
            "() => document.querySelector('#visitor').textContent.startsWith('visitor-')"
        )
        assert page.inner_text("#visitor") == visitor
        page.wait_for_selector("#profile .facet")  # this visitor's profile, read with the cookie
        browser.close()
    assert not errors, errors
