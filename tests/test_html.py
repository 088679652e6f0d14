"""`--format html`: one self-contained page (no external assets) of the environment x check matrix
and of the plan, rendered by Jinja2 with autoescaping, and opened in a real headless Chromium
(Debian's, installed by `make backends`) at a phone's width: its DOM holds the matrix, a
screenshot is taken, and a planted secret appears nowhere in the page."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess

import pytest
import yaml

from checker.report import formatter
from checker.results import CheckResult, Status

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_nothing_a_result_holds_becomes_markup():
    hostile = CheckResult("endpoint:x", "endpoints", Status.FAIL, '<img src=x onerror="alert(1)">',
                          found="</td></tr><script>alert(2)</script>", details=("<b>bold</b>",))
    page = formatter("html").checks([hostile])
    assert "<script>alert" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)           # no external asset


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: `make backends` installs Debian's (apt-get)")
def test_the_page_renders_in_a_browser_at_a_phones_width(cli, project, endpoint, monkeypatch, tmp_path):
    monkeypatch.setenv("API_TOKEN", "pl4nted-s3cret-value")
    (project / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "default_env": "dev",
        "environments": {"dev": {"region": "us-east-1", "base_url": "http://127.0.0.1:9/${API_TOKEN}"},
                         "prod": {"region": "us-east-1", "table_prefix": "prod-"}},
        "endpoints": [{"name": "health", "path": "/health", "retries": 0, "timeout": 1}]}))
    assert cli("apply", "--env", "dev", "--endpoint-url", endpoint, "--yes").exit_code == 0
    result = cli("check", "--all-envs", "--endpoint-url", endpoint, "--format", "html")
    assert result.exit_code == 1
    page = tmp_path / "report.html"
    page.write_text(result.stdout)
    assert "pl4nted" not in result.output and "s3cret" not in page.read_text()

    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60).stdout
    rows = re.findall(r"<tr><td class=\"check\">([^<]+)</td>(.*?)</tr>", dom)
    statuses = {check: re.findall(r'<td class="(\w*)">', cells) for check, cells in rows}
    assert statuses["table:user"] == ["pass", "fail"]                         # dev has its tables, prod none
    assert statuses["endpoint:health"][0] == "fail"
    assert '<details class="fail" open="">' in dom and "pl4nted" not in dom

    shot = tmp_path / "matrix.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=390,844",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=60)
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == (390, 844)
