"""The web page in headless Chromium (Debian's, driven by Playwright) against the local
stack: upload with progress, an optimistic message, a streamed reply, a generated
image, a delete; and not one console error on the way."""

from __future__ import annotations

import io
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from tests.e2e.local_stack import LocalStackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.xdist_group("e2e")]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Set to a path to keep a picture of the page (the README's comes from here).
SCREENSHOT = os.environ.get("AGENTFILES_SCREENSHOT")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Fails (does not skip) without Chromium: `make test` installs Debian's package first.
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser-deps`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def expected_console() -> list[str]:
    """Console errors a test expects: Chromium logs every 4xx answer it receives."""
    return []


@pytest.fixture
def page(browser: Browser, local_stack: LocalStackProcess, expected_console: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 820})
    opened = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.goto(local_stack.base_url)
    yield opened
    context.close()
    unexpected = [p for p in problems if not any(expected in p for expected in expected_console)]
    assert unexpected == [], unexpected


def _png(tmp_path: Path, width: int, height: int) -> Path:
    seed = uuid.uuid4().bytes
    image = Image.new("RGB", (width, height))
    image.putdata([(seed[i % 16], (i * 5) % 256, 120) for i in range(width * height)])
    path = tmp_path / "photo.png"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def _sign_in(page: Page) -> None:
    page.fill("#sub", f"browser-{uuid.uuid4().hex[:8]}")
    page.click("#signin button[type=submit]")
    expect(page.locator("#who-name")).to_be_visible()
    page.click("#new-thread")
    expect(page.locator("#composer")).to_be_visible()


def test_a_user_uploads_asks_watches_the_reply_draws_and_deletes(page: Page, tmp_path: Path):
    _sign_in(page)

    # Given an image attached through the picker: it goes straight to S3 with progress
    page.set_input_files("#file-input", str(_png(tmp_path, 120, 80)))
    attachment = page.locator(".attachment").first
    expect(attachment).to_have_attribute("data-status", "ready", timeout=30_000)
    assert attachment.locator("progress").evaluate("bar => bar.value") == 100

    # When the message is sent while the server has not answered yet (the request is held)
    held: list[Route] = []
    page.route(
        "**/threads/*/messages",
        lambda route: held.append(route) if route.request.method == "POST" else route.continue_(),
    )
    page.fill("#text", "What is in this picture?")
    page.click("#send")
    # Then it shows at once, with its picture, before the server answered
    optimistic = page.locator("[data-local=true]")
    expect(optimistic).to_be_visible()
    expect(optimistic.locator("img")).to_have_count(1)
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1, "the message was never sent"
    expect(page.locator(".message.user:not(.local)")).to_have_count(0)
    held[0].continue_()
    page.unroute("**/threads/*/messages")

    # And it is replaced by the saved message, and the reply streams in and completes
    expect(page.locator("[data-local=true]")).to_have_count(0, timeout=15_000)
    reply = page.locator(".message.assistant").last
    expect(reply).to_have_attribute("data-status", "success", timeout=30_000)
    expect(reply).to_contain_text("image 1: PNG 120x80")
    saved_image = page.locator(".message.user img").first
    expect(saved_image).to_be_visible()
    # And the thread shows the server's thumbnail, linked to the original as uploaded
    assert "thumbnail" in (saved_image.get_attribute("src") or "")
    original = page.locator(".message.user a.picture").first.get_attribute("href") or ""
    assert "/derived/" not in original and "thumbnail" not in original

    # When an image is generated
    page.fill("#text", "a lighthouse at dusk")
    page.click("#draw")
    drawn = page.locator(".message.assistant img")
    expect(drawn).to_have_count(1, timeout=30_000)
    # Then it renders
    images = "[...document.querySelectorAll('.message.assistant img')]"
    page.wait_for_function(f"() => {images}.every(image => image.complete && image.naturalWidth > 0)")
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT)

    # When the question is deleted
    before = page.locator(".message").count()
    page.locator(".message.user .delete").first.click()
    # Then it is gone from the thread
    expect(page.locator(".message")).to_have_count(before - 1)
    expect(page.locator(".message.user")).to_have_count(1)  # the image prompt remains


def test_a_dedup_hit_skips_the_upload(page: Page, tmp_path: Path):
    _sign_in(page)
    path = _png(tmp_path, 30, 20)
    page.set_input_files("#file-input", str(path))
    expect(page.locator(".attachment").first).to_have_attribute("data-status", "ready", timeout=30_000)
    page.set_input_files("#file-input", str(path))
    second = page.locator(".attachment").nth(1)
    expect(second).to_have_attribute("data-status", "ready", timeout=30_000)
    expect(second).to_contain_text("already uploaded")


def test_a_rejected_upload_says_why(page: Page, tmp_path: Path):
    _sign_in(page)
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"this is plain text, not a picture")
    page.set_input_files("#file-input", str(fake))
    attachment = page.locator(".attachment").first
    expect(attachment).to_have_attribute("data-status", "rejected", timeout=30_000)
    expect(attachment).to_contain_text("not the declared image/png")


def _drop_the_pages_socket(local_stack: LocalStackProcess, sub: str) -> None:
    """Close the page's WebSocket from the server side, as API Gateway's @connections
    DELETE does (the page sees a dropped connection, not one it closed)."""
    table = local_stack.aws("dynamodb")
    rows = table.query(
        TableName=local_stack.health["table"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :conn)",
        ExpressionAttributeValues={":pk": {"S": f"OWNER#{sub}"}, ":conn": {"S": "CONN#"}},
    )["Items"]
    callbacks = local_stack.callbacks()
    for row in rows:
        callbacks.delete_connection(ConnectionId=row["connectionId"]["S"])


def test_a_reply_streams_in_over_the_websocket_survives_a_dropped_socket_and_can_be_stopped(
    page: Page, local_stack: LocalStackProcess
):
    _sign_in(page)
    sub = page.locator("#who-name").inner_text()
    token = local_stack.token(sub)
    listed: list[str] = []
    page.on(
        "request",
        lambda request: (
            listed.append(request.url)
            if request.method == "GET" and re.search(r"/threads/[^/]+/messages(\?|$)", request.url)
            else None
        ),
    )

    # When a long, paced reply is asked for
    page.fill("#text", "tell me a story [[words:400]] [[delay_ms:15]]")
    page.click("#send")
    reply = page.locator(".message.assistant").last
    expect(reply).to_have_attribute("data-status", "streaming", timeout=30_000)
    # Then its text grows while it streams, and the page does not re-read the message list
    page.wait_for_function(
        "() => document.querySelector('.message.assistant:last-child .text')?.textContent.length > 20"
    )
    before = len(reply.locator(".text").inner_text())
    lists_while_streaming = len(listed)
    page.wait_for_function(
        f"() => document.querySelector('.message.assistant:last-child .text').textContent.length > {before}"
    )
    # When the socket is dropped mid-reply
    _drop_the_pages_socket(local_stack, sub)
    # Then the page reconnects, catches up, and ends with exactly the reply's text
    expect(reply).to_have_attribute("data-status", "success", timeout=45_000)
    reply_id = reply.get_attribute("data-message-id")
    thread = page.locator("#thread-list [aria-current=true]").get_attribute("data-thread-id")
    saved = local_stack.api("GET", f"/threads/{thread}/messages/{reply_id}", token).json()["message"]
    expect(reply.locator(".text")).to_have_text(saved["content"][0]["text"])
    assert len(listed) == lists_while_streaming, listed

    # When another long reply is stopped from its Stop button
    page.fill("#text", "and another one [[words:3000]] [[delay_ms:10]]")
    page.click("#send")
    second = page.locator(".message.assistant").last
    expect(second).to_have_attribute("data-status", "streaming", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('.message.assistant:last-child .text')?.textContent.length > 10"
    )
    second.locator("button.stop").click()
    # Then it ends stopped, keeping what had streamed
    expect(second).to_have_attribute("data-status", "stopped", timeout=30_000)
    second_id = second.get_attribute("data-message-id")
    stopped = local_stack.api("GET", f"/threads/{thread}/messages/{second_id}", token).json()["message"]
    expect(second.locator(".text")).to_have_text(stopped["content"][0]["text"])
    assert 0 < len(stopped["content"][0]["text"].split()) < 3000


def test_the_page_shows_usage_and_tells_a_full_storage_and_a_rate_limit_in_words(
    page: Page, local_stack: LocalStackProcess, tmp_path: Path, expected_console: list[str]
):
    expected_console += ["status of 413", "status of 429"]
    # Given a signed-in user: the panel shows their storage, quota and day
    _sign_in(page)
    sub = page.locator("#who-name").inner_text()
    expect(page.locator("#storage-text")).to_contain_text("0 bytes of 10.0 GiB")
    expect(page.locator("#today-text")).to_have_text("Today: 0 replies, 0 images, 0 tokens")

    # When an operator gives them 1 KiB and they attach 2 KiB
    local_stack.aws("dynamodb").update_item(
        TableName=local_stack.health["table"],
        Key={"pk": {"S": f"OWNER#{sub}"}, "sk": {"S": "USAGE"}},
        UpdateExpression="SET quotaBytes = :kib",
        ExpressionAttributeValues={":kib": {"N": "1024"}},
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("n" * 2048)
    page.set_input_files("#file-input", str(notes))
    # Then the attachment says, in words, that the storage is full and by how much
    attachment = page.locator(".attachment").first
    expect(attachment).to_have_attribute("data-status", "failed", timeout=15_000)
    expect(attachment).to_contain_text("Your storage is full: 0 bytes of 1.0 KiB")
    expect(attachment).to_contain_text("this needs 2.0 KiB more. Delete some files to make room.")
    expect(page.locator("#storage-text")).to_contain_text("0 bytes of 1.0 KiB")

    # When they have used every generation of this minute (and of the next, should the
    # minute turn meanwhile) and send one more
    token = local_stack.token(sub)
    limit = local_stack.api("GET", "/usage", token).json()["limits"]["generationsPerMinute"]
    window = int(time.time()) // 60
    for minute in (window, window + 1):
        local_stack.aws("dynamodb").put_item(
            TableName=local_stack.health["table"],
            Item={"pk": {"S": f"OWNER#{sub}"}, "sk": {"S": f"RATE#{minute}"}, "count": {"N": str(limit)}},
        )
    page.fill("#text", "one more")
    page.click("#send")
    # Then the message is marked not sent, saying when to try again
    refused = page.locator("[data-local=true]")
    expect(refused).to_contain_text("not sent", timeout=15_000)
    expect(refused.locator(".error")).to_contain_text(
        "You are asking for replies and images faster than allowed."
    )
    expect(refused.locator(".error")).to_contain_text("Try again in")
    expect(page.locator("#toast")).to_contain_text("Try again in")


def test_signed_out_the_page_shows_a_sign_in_view(page: Page):
    # Given a visitor who has not signed in / Then the page asks them to, and shows nothing else
    expect(page.locator("#welcome")).to_be_visible()
    expect(page.locator("#welcome")).to_contain_text("Sign in to start")
    expect(page.locator("#signin #sub")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    # When they sign in / Then the view gives way to the app
    _sign_in(page)
    expect(page.locator("#welcome")).to_be_hidden()


def _drop_on(page: Page, selector: str, path: Path, media_type: str) -> bool:
    """Drop a file on an element as the browser does; whether the page took the drop
    (a drop nobody prevents makes the browser open the file)."""
    return page.evaluate(
        """async ([selector, bytes, name, type]) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], name, { type }));
            const target = document.querySelector(selector);
            const init = { dataTransfer: data, bubbles: true, cancelable: true };
            target.dispatchEvent(new DragEvent("dragover", init));
            return !target.dispatchEvent(new DragEvent("drop", init));
        }""",
        [selector, list(path.read_bytes()), path.name, media_type],
    )


def test_a_file_dropped_anywhere_on_the_page_is_attached_with_a_thumbnail_not_opened(
    page: Page, tmp_path: Path
):
    _sign_in(page)
    url = page.url
    # When a picture is dropped on the messages, far from the dashed zone
    taken = _drop_on(page, "#messages", _png(tmp_path, 64, 48), "image/png")
    # Then the page took it (the browser does not navigate to it) and attached it
    assert taken
    attachment = page.locator(".attachment").first
    expect(attachment).to_have_attribute("data-status", "ready", timeout=30_000)
    assert page.url == url
    # And it shows a thumbnail before it is sent
    thumb = attachment.locator("img.thumb")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("image => image.complete && image.naturalWidth") == 64
    # And a drop on the header is taken too
    assert _drop_on(page, "header", _png(tmp_path, 20, 20), "image/png")
    expect(page.locator(".attachment")).to_have_count(2)


def test_a_refused_type_and_a_rejected_upload_both_show_red_with_their_reason(
    page: Page, tmp_path: Path, expected_console: list[str]
):
    expected_console.append("status of 422")
    _sign_in(page)
    # Given a type the API does not take, and bytes that lie about their type
    tool = tmp_path / "tool.exe"
    tool.write_bytes(b"MZ\x90\x00 not for a chat")
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"this is plain text, not a picture")
    # When both are attached
    page.set_input_files("#file-input", [str(tool), str(fake)])
    refused = page.locator(".attachment[data-name='tool.exe']")
    rejected = page.locator(".attachment[data-name='fake.png']")
    expect(refused).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(rejected).to_have_attribute("data-status", "rejected", timeout=30_000)
    # Then both look refused, in the same red, each with its reason
    color = "element => getComputedStyle(element).color"
    for attachment in (refused, rejected):
        expect(attachment).to_have_class(re.compile(r"\brefused\b"))
    assert refused.evaluate(color) == rejected.evaluate(color) == "rgb(192, 53, 43)"
    expect(refused.locator(".attachment-status")).to_contain_text("not accepted")
    expect(rejected.locator(".attachment-status")).to_contain_text("not the declared image/png")


def test_at_390_px_wide_the_page_fits_and_can_be_used(browser: Browser, local_stack: LocalStackProcess):
    # Given a phone-sized window
    context = browser.new_context(viewport={"width": 390, "height": 844})
    narrow = context.new_page()
    try:
        narrow.goto(local_stack.base_url)
        # Then the sign-in view fits
        assert narrow.evaluate("document.documentElement.scrollWidth") <= 390
        _sign_in(narrow)
        # And so does the signed-in page: the threads, the composer and its buttons in view
        assert narrow.evaluate("document.documentElement.scrollWidth") <= 390
        for selector in ("#new-thread", "#text", "#send", "#draw"):
            box = narrow.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)
            assert box["y"] + box["height"] <= 844, (selector, box)
        # And a message can be sent and its reply read
        narrow.fill("#text", "hello from a phone")
        narrow.click("#send")
        expect(narrow.locator(".message.assistant").last).to_have_attribute(
            "data-status", "success", timeout=30_000
        )
        assert narrow.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()


def test_after_a_reload_the_thread_opens_where_it_was_scrolled_to_its_end(
    page: Page, local_stack: LocalStackProcess
):
    _sign_in(page)
    sub = page.locator("#who-name").inner_text()
    thread = page.locator("#thread-list [aria-current=true]").get_attribute("data-thread-id")
    # Given a thread longer than the window, and a newer thread beside it
    token = local_stack.token(sub)
    for n in range(30):
        sent = local_stack.api(
            "POST", f"/threads/{thread}/messages", token, json={"content": f"line {n}", "generate": False}
        )
        assert sent.status_code == 201, sent.text
    assert local_stack.api("POST", "/threads", token, json={"title": "newer"}).status_code == 201
    # When the page is reloaded
    page.reload()
    expect(page.locator(".message")).to_have_count(30, timeout=15_000)
    # Then the same thread is open, scrolled to its last message
    expect(page.locator("#thread-list [aria-current=true]")).to_have_attribute("data-thread-id", thread)
    page.wait_for_function(
        "() => { const l = document.getElementById('messages');"
        " return l.scrollHeight > l.clientHeight && l.scrollHeight - l.scrollTop - l.clientHeight < 2; }"
    )
    expect(page.locator(".message").last).to_be_in_viewport()


def test_a_user_downloads_their_data_then_deletes_their_account_after_confirming(page: Page):
    # Given a signed-in user with a thread
    _sign_in(page)
    # When they ask for their data
    with page.expect_download(timeout=60_000) as download:
        page.click("#export")
    # Then a ZIP of it is downloaded
    assert download.value.suggested_filename.endswith(".zip")
    expect(page.locator("#export-text")).to_contain_text("ready")
    # When they delete their account but dismiss the confirmation, nothing happens
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#erase")
    page.click("#new-thread")
    expect(page.locator("#thread-list li")).to_have_count(2)
    # When they confirm it
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#erase")
    # Then the page says so and signs them out
    expect(page.locator("#toast")).to_contain_text("being deleted")
    expect(page.locator("#welcome")).to_be_visible(timeout=10_000)
