"""The web page at /ui in a real Chromium (Debian's, driven by Playwright), against a real `searchsvc serve`
with API keys, sample_data/markdown ingested, and the fake OpenAI server as its embedding and chat model.
Each flow saves a screenshot of its end state in $SEARCHSVC_SCREENSHOTS (CI prints the folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MODEL, cli_env, remote_settings
from tests.fake_openai import FakeOpenAI
from tests.servers import serving

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]  # fmt: skip
SHOTS = Path(os.environ.get("SEARCHSVC_SCREENSHOTS") or Path(tempfile.gettempdir()) / "searchsvc-screenshots")
KEYS = "rw-secret:rw,ro-secret:ro"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeOpenAI]]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed: apt-get install chromium (.ci/run does)")
    with FakeOpenAI() as fake:
        settings = remote_settings(tmp_path_factory.mktemp("ui"), fake, embedding_model=MODEL)
        env = cli_env(settings, fake, SEARCHSVC_API_KEYS=KEYS, SEARCHSVC_MAX_RETRIES="0")
        command = [sys.executable, "-m", "searchsvc", "ingest", "sample_data/markdown", "-c", "docs"]
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
        with serving(env) as url:
            yield url.removesuffix("/v1"), fake


@pytest.fixture
def page(site: tuple[str, FakeOpenAI]) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser.new_page(viewport={"width": 1280, "height": 860})
        browser.close()


def shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))  # type: ignore[attr-defined]  (what the screen shows)


def signed_in(page: object, base: str, key: str = "rw-secret") -> None:
    """Open the page: it asks for a key (the server has keys), and loads the collections once given one."""
    page.goto(base + "/")  # type: ignore[attr-defined]
    page.get_by_label("This server needs an API key").fill(key)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Use key").click()  # type: ignore[attr-defined]
    page.wait_for_function("document.querySelector('#collection').options.length > 0")  # type: ignore[attr-defined]


def test_search_and_open_a_hit_at_its_place(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, _ = site
    signed_in(page, base)
    assert page.url.endswith("/ui/")  # type: ignore[attr-defined]
    page.get_by_role("searchbox", name="Search").fill("install pyenv with Homebrew")  # type: ignore[attr-defined]
    page.get_by_role("searchbox", name="Search").press("Enter")  # type: ignore[attr-defined]
    first = page.locator("#results li").first  # type: ignore[attr-defined]
    expect(first).to_be_visible()
    expect(first.locator("mark").first).to_be_visible()  # the query's words marked in the chunk
    snippet = first.locator(".snippet").inner_text()
    first.get_by_role("button", name="Open at this place").click()
    here = page.locator("#viewer-text mark.here")  # type: ignore[attr-defined]
    expect(here).to_be_in_viewport()
    assert here.inner_text().strip()[:40] == snippet.strip()[:40]  # the hit's own text, in its document
    shot(page, "search-open-at-place")


def test_ask_streams_the_answer_and_a_citation_opens_the_quote(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, fake = site
    fake.chat_reply = "Install pyenv with Homebrew: run brew update and then brew install pyenv [1]."
    signed_in(page, base)
    page.get_by_role("tab", name="Ask").click()  # type: ignore[attr-defined]
    page.evaluate("""() => { window.pieces = 0; new MutationObserver((changes) => {  // each streamed piece
        window.pieces += changes.filter((c) => c.type === "childList").length; })
        .observe(document.querySelector('#answer'), {childList: true}); }""")  # type: ignore[attr-defined]
    page.get_by_label("Question").fill("How do I install pyenv with Homebrew?")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Ask").click()  # type: ignore[attr-defined]
    expect(page.locator("#ask-status")).to_contain_text("Answered")  # type: ignore[attr-defined]
    assert page.evaluate("window.pieces") > 5  # type: ignore[attr-defined]  (word by word, not at once)
    expect(page.locator("#answer")).to_have_text(fake.chat_reply)  # type: ignore[attr-defined]
    quote = page.locator("#citations blockquote").first.inner_text()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Source 1").click()  # type: ignore[attr-defined]
    here = page.locator("#viewer-text mark.here")  # type: ignore[attr-defined]
    expect(here).to_be_in_viewport()
    assert here.inner_text().split() == quote.split()  # the quoted span itself, marked in its document
    shot(page, "ask-citation-quote")


def test_errors_are_one_readable_line(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, _ = site
    page.goto(base + "/ui/")  # type: ignore[attr-defined]
    expect(page.locator("#error")).to_contain_text("Error 401")  # type: ignore[attr-defined]
    signed_in(page, base)
    page.get_by_role("searchbox", name="Search").fill("x" * 5000)  # type: ignore[attr-defined]
    page.get_by_role("searchbox", name="Search").press("Enter")  # type: ignore[attr-defined]
    expect(page.locator("#error")).to_contain_text("4,096")  # type: ignore[attr-defined]  the server's own reason
    shot(page, "error-line")


def test_a_360_pixel_screen_reads_without_sideways_scrolling(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, _ = site
    page.set_viewport_size({"width": 360, "height": 740})  # type: ignore[attr-defined]
    signed_in(page, base)
    page.get_by_role("searchbox", name="Search").fill("redis persistence snapshots")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Search", exact=True).click()  # type: ignore[attr-defined]
    expect(page.locator("#results li").first).to_be_visible()  # type: ignore[attr-defined]
    page.locator("#results li").first.get_by_role("button", name="Open at this place").click()  # type: ignore[attr-defined]
    expect(page.locator("#viewer-text mark.here")).to_be_visible()  # type: ignore[attr-defined]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 360  # type: ignore[attr-defined]
    shot(page, "narrow-360px")


def test_two_models_answer_side_by_side(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, fake = site
    fake.chat_reply = "Run brew install pyenv [1]."
    signed_in(page, base)
    page.get_by_role("tab", name="Ask").click()  # type: ignore[attr-defined]
    page.get_by_text("Settings").click()  # type: ignore[attr-defined]
    page.get_by_label("Model", exact=True).fill("gpt-4o-mini")  # type: ignore[attr-defined]
    page.get_by_label("Compare with").fill("claude-3-haiku")  # type: ignore[attr-defined]
    page.get_by_label("Question").fill("How do I install pyenv with Homebrew?")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Ask").click()  # type: ignore[attr-defined]
    columns = page.get_by_role("region", name="Answers side by side").locator("section")  # type: ignore[attr-defined]
    expect(columns).to_have_count(2)
    expect(columns.nth(0).locator("h3")).to_have_text("gpt-4o-mini")
    expect(columns.nth(1).locator("h3")).to_have_text("claude-3-haiku")
    expect(columns.nth(1).locator(".meta")).to_contain_text(" ms · ")  # latency and tokens, each
    assert {r.body["model"] for r in fake.chat_requests()[-2:]} == {"gpt-4o-mini", "claude-3-haiku"}
    shot(page, "compare-two-models")


def test_a_follow_up_stays_in_its_conversation_which_can_be_deleted(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, fake = site
    fake.chat_reply = lambda m: "pyenv install homebrew" if m[0]["content"].startswith("Rewrite") else "Yes [1]."
    signed_in(page, base)
    page.get_by_role("tab", name="Ask").click()  # type: ignore[attr-defined]
    for question in ("How do I install pyenv?", "And with Homebrew?"):
        page.get_by_label("Question").fill(question)  # type: ignore[attr-defined]
        page.get_by_role("button", name="Ask").click()  # type: ignore[attr-defined]
        expect(page.locator("#ask-status")).to_contain_text("Answered")  # type: ignore[attr-defined]
    expect(page.locator("#earlier li")).to_have_count(1)  # type: ignore[attr-defined]
    rewrite = [r for r in fake.chat_requests() if r.body["messages"][0]["content"].startswith("Rewrite")][-1]
    assert rewrite.body["messages"][1]["content"] == "How do I install pyenv?"  # the follow-up saw its thread
    listed = page.get_by_role("complementary", name="Conversations").locator("li")  # type: ignore[attr-defined]
    expect(listed).to_have_count(1)
    shot(page, "conversation-follow-up")
    page.get_by_role("button", name="Delete the conversation How do I install pyenv?").click()  # type: ignore[attr-defined]
    expect(listed).to_have_count(0)
    expect(page.locator("#earlier li")).to_have_count(0)  # type: ignore[attr-defined]


def test_a_filter_narrows_the_search_and_a_bad_one_says_why(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, _ = site
    signed_in(page, base)
    page.get_by_role("searchbox", name="Search").fill("install")  # type: ignore[attr-defined]
    page.get_by_text("Filter", exact=True).click()  # type: ignore[attr-defined]
    page.get_by_label("Filter on document fields").fill(
        '{"key": {"$gte": "markdown/redis/", "$lt": "markdown/redis0"}}'
    )  # type: ignore[attr-defined]
    page.get_by_role("button", name="Search", exact=True).click()  # type: ignore[attr-defined]
    expect(page.locator("#results li").first).to_be_visible()  # type: ignore[attr-defined]
    paths = page.locator("#results .path").all_inner_texts()  # type: ignore[attr-defined]
    assert paths and all("redis" in p for p in paths), paths
    page.get_by_label("Filter on document fields").fill("{not json")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Search", exact=True).click()  # type: ignore[attr-defined]
    expect(page.locator("#error")).to_contain_text("The filter is not JSON")  # type: ignore[attr-defined]


def test_upload_a_pdf_watch_it_ingest_and_find_its_text(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, _ = site
    signed_in(page, base)
    page.get_by_role("tab", name="Collections").click()  # type: ignore[attr-defined]
    expect(page.locator("#collection-rows tr")).to_have_count(1)  # type: ignore[attr-defined]
    expect(page.locator("#health-docs")).to_have_text("ok")  # type: ignore[attr-defined]  the doctor's verdict
    expect(page.locator("#page-status")).to_have_text("1-10 of 10")  # type: ignore[attr-defined]
    pdf = ROOT / "sample_data" / "pdf" / "shared-mime-info-spec.pdf"
    page.get_by_label("Add files to the collection").set_input_files(str(pdf))  # type: ignore[attr-defined]
    expect(page.locator("#upload-status")).to_contain_text("Ingestion succeeded: 1 added", timeout=120_000)  # type: ignore[attr-defined]
    expect(page.locator("#page-status")).to_have_text("1-11 of 11")  # type: ignore[attr-defined]
    shot(page, "upload-pdf-ingested")
    page.get_by_role("tab", name="Search").click()  # type: ignore[attr-defined]
    page.get_by_role("searchbox", name="Search").fill("application XML file named after the package")  # type: ignore[attr-defined]
    page.get_by_role("searchbox", name="Search").press("Enter")  # type: ignore[attr-defined]
    first = page.locator("#results li").first  # type: ignore[attr-defined]
    expect(first.locator(".path")).to_contain_text("shared-mime-info-spec.pdf")
    expect(first.locator(".place")).to_contain_text("page ")  # a PDF's hits name their page
    page.once("dialog", lambda dialog: dialog.accept())  # type: ignore[attr-defined]
    page.get_by_role("tab", name="Collections").click()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Delete shared-mime-info-spec").first.click()  # type: ignore[attr-defined]
    expect(page.locator("#page-status")).to_have_text("1-10 of 10")  # type: ignore[attr-defined]


def test_a_read_only_key_sees_no_write_controls(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, _ = site
    signed_in(page, base, key="ro-secret")
    page.get_by_role("tab", name="Collections").click()  # type: ignore[attr-defined]
    expect(page.locator("#documents li").first).to_be_visible()  # type: ignore[attr-defined]
    expect(page.get_by_role("button", name="Delete", exact=False)).to_have_count(0)  # type: ignore[attr-defined]
    expect(page.get_by_label("Add files to the collection")).to_be_hidden()  # type: ignore[attr-defined]
    expect(page.get_by_role("button", name="Open", exact=False).first).to_be_visible()  # type: ignore[attr-defined]
    shot(page, "read-only-key")


def test_documents_are_found_by_name_and_paged(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, _ = site
    signed_in(page, base)
    page.get_by_role("tab", name="Collections").click()  # type: ignore[attr-defined]
    page.get_by_role("searchbox", name="Find documents").fill("REDIS")  # type: ignore[attr-defined]
    page.get_by_role("searchbox", name="Find documents").press("Enter")  # type: ignore[attr-defined]
    expect(page.locator("#page-status")).to_have_text("1-1 of 1")  # type: ignore[attr-defined]
    expect(page.locator("#documents li")).to_contain_text("What is Redis?")  # type: ignore[attr-defined]


def test_keyboard_only_search_and_open(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, _ = site
    signed_in(page, base)
    page.get_by_role("searchbox", name="Search").focus()  # type: ignore[attr-defined]
    page.keyboard.type("redis persistence")  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    expect(page.locator("#results li").first).to_be_visible()  # type: ignore[attr-defined]
    for _ in range(10):  # Tab on to the first result's button, then Enter
        page.keyboard.press("Tab")  # type: ignore[attr-defined]
        if page.evaluate("document.activeElement.textContent") == "Open at this place":  # type: ignore[attr-defined]
            break
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    expect(page.locator("#viewer-text mark.here")).to_be_visible()  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "viewer-text"  # type: ignore[attr-defined]


def test_dark_mode_and_i_do_not_know(site: tuple[str, FakeOpenAI], page: object) -> None:
    from playwright.sync_api import expect

    base, _ = site
    page.emulate_media(color_scheme="dark")  # type: ignore[attr-defined]
    signed_in(page, base)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")  # type: ignore[attr-defined]
    assert background == "rgb(21, 21, 23)", background
    page.get_by_role("tab", name="Ask").click()  # type: ignore[attr-defined]
    page.get_by_label("Question").fill("zzqx wvvk qqpl")  # type: ignore[attr-defined]  nothing near it
    page.get_by_role("button", name="Ask").click()  # type: ignore[attr-defined]
    expect(page.locator("#ask-status")).to_contain_text("I don't know")  # type: ignore[attr-defined]
    expect(page.locator("#answer.unknown")).to_contain_text("I don't know")  # type: ignore[attr-defined]
    shot(page, "dark-i-do-not-know")


def test_a_file_too_large_and_a_server_gone_are_said_plainly(tmp_path: Path, page: object) -> None:
    from playwright.sync_api import expect

    with FakeOpenAI() as fake:
        settings = remote_settings(tmp_path, fake, embedding_model=MODEL)
        env = cli_env(settings, fake, SEARCHSVC_MAX_FILE_BYTES="2048")
        (tmp_path / "small.md").write_text("# Small\n\nA short note.\n")
        subprocess.run([sys.executable, "-m", "searchsvc", "ingest", str(tmp_path / "small.md"), "-c", "notes"],
                       env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
        with serving(env) as url:
            base = url.removesuffix("/v1")
            page.goto(base + "/ui/")  # type: ignore[attr-defined]
            page.get_by_role("tab", name="Collections").click()  # type: ignore[attr-defined]
            expect(page.locator("#page-status")).to_have_text("1-1 of 1")  # type: ignore[attr-defined]
            big = tmp_path / "big.md"
            big.write_text("# Big\n\n" + "words " * 2000)
            page.get_by_label("Add files to the collection").set_input_files(str(big))  # type: ignore[attr-defined]
            expect(page.locator("#error")).to_contain_text("Error 413: Too large for this server")  # type: ignore[attr-defined]
            shot(page, "error-413")
        page.get_by_role("tab", name="Search").click()  # type: ignore[attr-defined]
        page.get_by_role("searchbox", name="Search").fill("anything")  # type: ignore[attr-defined]
        page.get_by_role("searchbox", name="Search").press("Enter")  # type: ignore[attr-defined]
        expect(page.locator("#error")).to_have_text(  # type: ignore[attr-defined]
            "The server cannot be reached: is searchsvc serve running?"
        )
        shot(page, "error-server-down")
