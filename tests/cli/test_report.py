"""`--report` is a document: who wrote it, with which keys, when, the counts and every line;
checked against the published schema docs/report.schema.json with a JSON Schema validator."""

from __future__ import annotations

import datetime
import json
import uuid
from pathlib import Path

import jsonschema

from hangar import __version__
from tests.support.attachments import fingerprint
from tests.support.cli import KEY1, KEY1_PUB, KEY2_PUB, run_hangar, sign_args, validate_args
from tests.support.images import push_image
from tests.support.paths import REPO
from tests.support.registry import RegistryServer

SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def check_schema(document: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)


def time_of(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_sign_report_is_a_document(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = f"report/app-{uuid.uuid4().hex[:8]}"
    push_image(registry_http, repo, "v1", kind="oci-index")
    push_image(registry_http, repo, "v2", kind="oci-manifest")
    lines = [
        f"{registry_http.host}/{repo}:v1",
        f"{registry_http.host}/{repo}:v2",
        f"{registry_http.host}/{repo}:missing",
        "docker.io/a/b 127.0.0.1:1/a/b v1",  # mirror format: skipped
    ]
    list_file = tmp_path / "list.txt"
    list_file.write_text("\n".join(lines) + "\n")
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    args = sign_args(list_file, registry_http, "--report", "r.json")
    result = run_hangar(args, isolated_home, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    document = json.loads((tmp_path / "r.json").read_text())
    check_schema(document)
    assert document["hangarVersion"] == __version__
    assert document["command"] == "hangar sign"
    assert document["arguments"] == args
    assert document["keys"] == [{"file": str(KEY1), "fingerprint": fingerprint(KEY1_PUB)}]
    start, end = time_of(document["startTime"]), time_of(document["endTime"])
    assert before <= start <= end <= datetime.datetime.now(datetime.UTC)
    summary = document["summary"]
    assert (summary["total"], summary["signed"], summary["failed"]) == (4, 2, 1)
    assert summary["mirror-format"] == 1 and summary["not-started"] == 0
    written = [d for r in document["results"] for d in r["digests"] if d["action"] == "signed"]
    assert summary["signatures"] == len(written) >= 3  # v1's index and platform(s), v2
    assert summary["interrupted"] is False and summary["stoppedBy"] is None
    by_image = {record["image"]: record for record in document["results"]}
    assert set(by_image) == set(lines)
    assert by_image[lines[0]]["status"] == "signed" and len(by_image[lines[0]]["digests"]) >= 2
    assert by_image[lines[2]]["status"] == "failed" and by_image[lines[2]]["message"]


def test_validate_report_to_stdout_keeps_logs_on_stderr(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = f"report/stdout-{uuid.uuid4().hex[:8]}"
    push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = tmp_path / "list.txt"
    list_file.write_text(f"{registry_http.host}/{repo}:v1\n")
    signed = run_hangar(sign_args(list_file, registry_http), isolated_home, cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    args = validate_args(list_file, registry_http, "--report", "-", keys=(KEY1_PUB, KEY2_PUB))
    result = run_hangar(args, isolated_home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # stdout is the report and nothing else
    check_schema(document)
    assert document["command"] == "hangar sign validate"
    assert [key["fingerprint"] for key in document["keys"]] == [
        fingerprint(KEY1_PUB),
        fingerprint(KEY2_PUB),
    ]
    assert document["summary"]["passed"] == 1 and document["summary"]["total"] == 1
    assert "PASS: " in result.stderr and "Summary: 1 image" in result.stderr
    assert not (tmp_path / "-").exists()
