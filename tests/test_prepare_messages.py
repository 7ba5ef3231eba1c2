"""Background removal that cannot run says what to do, in our words: the library's own message
(an ImportError's, a download's) stays in the log, where it does not confuse people in the web UI."""

from __future__ import annotations

import logging
import sys
import types

import pytest
from PIL import Image

from videogen.errors import UserError
from videogen.media import prepare


@pytest.fixture(autouse=True)
def no_rembg_session_cache() -> None:
    prepare._rembg_session.cache_clear()


def _refusal() -> str:
    with pytest.raises(UserError) as caught:
        prepare.prepare_object_image(Image.new("RGB", (64, 64), "red"))
    return str(caught.value)


def test_missing_rembg_says_what_to_do_without_pythons_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rembg", None)  # import rembg -> ImportError
    message = _refusal()
    assert "No module named" not in message and "ImportError" not in message
    assert "pip install 'videogen[sv3d]'" in message
    assert "RGBA" in message and "remove_background off" in message


def test_weights_that_cannot_load_keep_the_librarys_message_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def new_session(name: str) -> object:
        raise ConnectionError("HTTPSConnectionPool(host='github.com'): Max retries exceeded")

    monkeypatch.setitem(sys.modules, "rembg", types.SimpleNamespace(new_session=new_session))
    with caplog.at_level(logging.WARNING, logger="videogen.media.prepare"):
        message = _refusal()
    assert "HTTPSConnectionPool" not in message and "ConnectionError" not in message
    assert "u2net.onnx" in message and "needs the network" in message and "remove_background off" in message
    assert "ConnectionError: HTTPSConnectionPool" in caplog.text
