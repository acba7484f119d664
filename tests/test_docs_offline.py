"""The API docs pages load everything from the server itself: they work with no network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from tests.conftest import make_settings


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_and_their_assets_are_served_locally(tmp_path: Path, page: str) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        html = client.get(page)
        assert html.status_code == 200
        assert re.findall(r"https?://", html.text.replace("http-equiv", "")) == []  # nothing from a CDN
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert any(a.endswith(".js") for a in assets)
        for asset in assets:
            assert asset.startswith("/docs-assets/")
            fetched = client.get(asset)
            assert fetched.status_code == 200 and len(fetched.content) > 1000, asset
        assert client.get("/openapi.json").json()["info"]["title"] == "searchsvc"
    if page == "/docs":
        assert '"validatorUrl": null' in html.text
