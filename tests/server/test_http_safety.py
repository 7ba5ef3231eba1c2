"""What a real ``videogen serve`` does with hostile or careless HTTP: the API key is checked before
a body is read; DNS rebinding (a foreign Host) and cross-site writes (a foreign Origin) are refused;
errors are JSON that says what is wrong; and the OpenAPI document and the docs pages are the
server's own, usable with no network."""

from __future__ import annotations

import re
import socket
import time
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import SMALL, ServerProcess
from typer.testing import CliRunner

from videogen.cli import app as cli
from videogen.errors import UserError
from videogen.server import create_app
from videogen.server.browser import HostRule
from videogen.server.settings import Settings

KEY = {"Authorization": "Bearer s3cret"}


def raw_request(server: ServerProcess, head: str, body: bytes, timeout: float = 5) -> tuple[bytes, float]:
    """Send a request head and the first bytes of its body, and read what comes back within
    ``timeout`` seconds without sending the rest; (the answer's head and body, seconds taken)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + body)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer, time.monotonic() - started


def test_a_request_without_the_key_is_refused_before_its_body_is_sent(spawn_server) -> None:
    server = spawn_server("--api-key", "s3cret")
    size = 150 * 2**20
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
    for path, content_type, start in (
        ("/v1/uploads", "multipart/form-data; boundary=b", part + bytes(65536)),
        ("/v1/jobs", "application/json", b'{"prompt": "' + b"x" * 65536),
    ):
        head = (
            f"POST {path} HTTP/1.1\nHost: 127.0.0.1:{server.port}\nContent-Type: {content_type}\n"
            f"Content-Length: {size}\n\n"
        )
        answer, seconds = raw_request(server, head, start)
        assert answer.startswith(b"HTTP/1.1 401 "), (path, answer[:200])
        assert b'"field":"Authorization"' in answer and b"www-authenticate: bearer" in answer.lower()
        assert seconds < 3, f"{path}: the 401 came after {seconds:.1f} s"


def test_the_docs_and_the_schema_need_the_key_too(spawn_server) -> None:
    server = spawn_server("--api-key", "s3cret")
    client = server.client
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css", "/", "/metrics"):
        refused = client.get(path)
        assert refused.status_code == 401 and refused.json()["field"] == "Authorization", path
        assert client.get(path, headers=KEY).status_code in (200, 307), path
    assert client.get("/healthz").status_code == 200

    schema = client.get("/openapi.json", headers=KEY).json()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "the key given to `videogen serve --api-key`",
    }
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            guarded = path != "/healthz"
            assert ("security" in operation) is guarded, (method, path)
            assert ("401" in operation["responses"]) is guarded, (method, path)


def test_the_schema_of_a_server_without_a_key_lists_no_security(live_server) -> None:
    schema = live_server.client.get("/openapi.json").json()
    assert "securitySchemes" not in schema.get("components", {})
    operations = [(method, path, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert not any("security" in op or "401" in op["responses"] for _, _, op in operations)
    assert ("head", "/v1/jobs/{job_id}/files/{path}") in {(method, path) for method, path, _ in operations}
    events = schema["paths"]["/v1/jobs/{job_id}/events"]["get"]
    assert list(events["responses"]["200"]["content"]) == ["text/event-stream"]
    assert "Last-Event-ID" in {parameter["name"] for parameter in events["parameters"]}
    error_out = {"$ref": "#/components/schemas/ErrorOut"}
    files = schema["paths"]["/v1/jobs/{job_id}/files/{path}"]["get"]["responses"]
    assert files["416"]["content"]["application/json"]["schema"] == error_out
    for _, path, op in operations:  # every 422 is the ErrorOut this server sends
        if "422" in op["responses"]:
            assert op["responses"]["422"]["content"]["application/json"]["schema"] == error_out, path
    assert "HTTPValidationError" not in schema["components"]["schemas"]


class _Links(HTMLParser):
    """Every URL a page loads: src, href and spec-url (ReDoc's) attributes, and url: / url( in
    its inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]

    def handle_data(self, data: str) -> None:
        self.urls += re.findall(r"""url\s*[:(]\s*['"]([^'"]+)""", data)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_only_assets_the_server_serves(live_server, page) -> None:
    response = live_server.client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "http://" not in response.text and "https://" not in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'self';")
    links = _Links()
    links.feed(response.text)
    assert len(links.urls) >= 3, links.urls  # a script, a favicon, the OpenAPI document (and CSS)
    for url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = live_server.client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    scripts = [url for url in links.urls if url.endswith(".js")]
    assert scripts and all(live_server.client.get(url).headers["content-type"].startswith(
        ("text/javascript", "application/javascript")) for url in scripts)  # fmt: skip


def test_home_leads_to_the_docs_without_a_ui(live_server) -> None:
    home = live_server.client.get("/", follow_redirects=False)
    assert home.status_code in (302, 307) and home.headers["location"] == "/docs"


# Host names and DNS rebinding


def test_a_loopback_server_answers_only_loopback_host_names(spawn_server) -> None:
    server = spawn_server("--allowed-hosts", "videogen.lan,Box.lan", "--allowed-hosts", "other.lan:8080")
    for host in ("127.0.0.1", f"127.0.0.1:{server.port}", "localhost:1", "[::1]:8000", "LOCALHOST",
                 "videogen.lan", "box.lan:80", "other.lan"):  # fmt: skip
        assert server.client.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in ("rebind.attacker.example", "rebind.attacker.example:8000", "videogen.lan.attacker.example",
                 "192.168.1.5", "[fe80::1]"):  # fmt: skip
        response = server.client.get("/v1/jobs", headers={"Host": host})
        assert response.status_code == 421, host
        assert response.json()["field"] == "Host" and repr(host) in response.json()["error"]
    assert (
        "--allowed-hosts rebind.attacker.example"
        in server.client.get("/", headers={"Host": "rebind.attacker.example:8000"}).json()["error"]
    )


def settings_for(host: str, *allowed: str) -> Settings:
    return Settings(data_dir=Path("unused"), host=host, allowed_hosts=allowed)


def test_host_rules_for_other_addresses() -> None:
    anywhere = HostRule.from_settings(settings_for("0.0.0.0"))
    assert anywhere is not None
    assert all(anywhere.allows(h) for h in ("192.168.1.5:8000", "[fe80::1]", "localhost", "10.0.0.1"))
    assert not anywhere.allows("videogen.lan") and not anywhere.allows("attacker.example")
    named = HostRule.from_settings(settings_for("my-box", "gpu.lan"))
    assert named is not None and named.allows("my-box:8000") and named.allows("gpu.lan")
    everything = HostRule.from_settings(settings_for("127.0.0.1", "*"))
    assert everything is not None and everything.allows("anything.example")
    assert HostRule.from_settings(replace(settings_for("x"), host=None)) is None  # in-process apps
    with pytest.raises(UserError, match="allowed_hosts: 'http://x' is not a host name"):
        HostRule.from_settings(settings_for("127.0.0.1", "a.lan,http://x"))


def test_serve_refuses_a_bad_allowed_hosts_in_one_line(tmp_path, monkeypatch) -> None:
    def serve_forever(*_args, **_kwargs) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr("uvicorn.run", serve_forever)
    options = ["serve", "--data-dir", str(tmp_path), "--allowed-hosts", "box.lan,https://box.lan/"]
    result = CliRunner().invoke(cli, options)
    assert result.exit_code != 0 and result.exception is not None
    assert "allowed_hosts: 'https://box.lan/' is not a host name" in result.output, result.exception
    assert "Traceback" not in result.output


# Cross-site writes


def test_writes_from_another_sites_page_are_refused(live_server) -> None:
    own = f"http://127.0.0.1:{live_server.port}"
    client = live_server.client
    job = live_server.submit(steps=1)
    body = {**SMALL, "steps": 1}
    for headers in (
        {"Origin": "http://attacker.example"},
        {"Origin": f"http://localhost:{live_server.port + 1}"},  # another port is another origin
        {"Origin": "null"},  # a sandboxed frame, a file:// page
        {"Sec-Fetch-Site": "cross-site"},
    ):
        for method, path in (("POST", "/v1/jobs"), ("DELETE", f"/v1/jobs/{job['id']}"),
                             ("POST", f"/v1/jobs/{job['id']}/cancel"), ("POST", "/v1/uploads")):  # fmt: skip
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (headers, method, path)
            assert response.json()["field"] in ("Origin", "Sec-Fetch-Site")
        assert client.get(f"/v1/jobs/{job['id']}", headers=headers).status_code == 200  # reads are not writes
    assert client.post("/v1/jobs", json=body, headers={"Origin": own}).status_code == 202
    same_site = {"Origin": own, "Sec-Fetch-Site": "same-origin"}
    assert client.post("/v1/jobs", json=body, headers=same_site).status_code == 202
    assert client.post("/v1/jobs", json=body).status_code == 202  # curl, scripts: no Origin
    after = client.get(f"/v1/jobs/{job['id']}")  # neither deleted nor cancelled by the refused writes
    assert after.status_code == 200 and after.json()["status"] != "cancelled"


def test_the_ui_works_through_the_checks(spawn_server) -> None:
    """The UI's own requests carry the server's Origin; pages elsewhere cannot post to it."""
    server = spawn_server("--ui")
    assert server.client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    page = server.client.get("/ui/")
    assert page.status_code == 200 and "gradio" in page.text.lower()
    own = {"Origin": server.url}
    upload = server.client.post("/ui/gradio_api/upload", files={"files": ("a.txt", b"hi")}, headers=own)
    assert upload.status_code == 200, upload.text
    foreign = {"Origin": "http://attacker.example"}
    assert server.client.post("/ui/gradio_api/upload", files={"files": ("a.txt", b"hi")},
                              headers=foreign).status_code == 403  # fmt: skip


# Honest errors


def test_a_body_that_is_not_json_says_so(live_server) -> None:
    json_type = {"content-type": "application/json"}
    for body in (b'{"prompt": "\xff\xfe"}', b"\xc3", b"{broken", b'{"prompt": "a",}'):
        response = live_server.client.post("/v1/jobs", content=body, headers=json_type)
        assert response.status_code == 422, body
        error = response.json()
        assert error["field"] == "body" and error["error"].startswith("body is not valid UTF-8 JSON"), error
    for body, kind in ((b"[1, 2]", "an array"), (b"null", "null"), (b'"text"', "a string")):
        response = live_server.client.post("/v1/jobs", content=body, headers=json_type)
        assert response.json()["error"] == f"body is {kind}, not a JSON object"
    assert live_server.client.post("/v1/jobs", headers=json_type).json()["error"] == (
        "body is empty; send a JSON object"
    )


def test_user_errors_name_no_server_path(make_client, settings) -> None:
    """A UserError that spells a file under the data directory is answered with a relative path."""
    app = create_app(settings)
    missing = settings.uploads_dir.resolve() / "ab.png"

    @app.get("/v1/fails")
    def fails() -> None:
        raise UserError(f"image: {str(missing)!r} cannot be read")

    with TestClient(app) as client:
        error = client.get("/v1/fails").json()
    assert error == {
        "error": "image: 'uploads/ab.png' cannot be read",
        "field": "image",
        "problems": [{"field": "image", "message": "image: 'uploads/ab.png' cannot be read"}],
    }


def test_method_errors_list_every_allowed_method(live_server) -> None:
    job_path = f"/v1/jobs/{'0' * 32}"
    for method, path, allowed in (
        ("PUT", job_path, "GET, DELETE"),
        ("DELETE", "/v1/jobs", "GET, POST"),
        ("POST", f"{job_path}/files/video.mp4", "GET, HEAD"),
        ("GET", f"{job_path}/cancel", "POST"),
    ):
        response = live_server.client.request(method, path)
        assert response.status_code == 405 and response.headers["allow"] == allowed, (method, path)
        assert response.json()["error"] == f"{method} is not allowed on {path}; it takes {allowed}"


def test_file_heads_and_range_errors(live_server) -> None:
    job = live_server.submit(steps=1)
    video = live_server.wait_for(job["id"], {"succeeded"})["outputs"][0]["urls"]["mp4"]
    size = len(live_server.client.get(video).content)
    head = live_server.client.head(video)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == size and head.headers["content-type"] == "video/mp4"
    beyond = live_server.client.get(video, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.json()["field"] == "Range" and str(size) in beyond.json()["error"]
    malformed = live_server.client.get(video, headers={"Range": "pages=1-2"})
    assert malformed.status_code == 400 and malformed.json()["field"] == "Range"
    assert live_server.client.get(video, headers={"Range": "bytes=0-9"}).status_code == 206
